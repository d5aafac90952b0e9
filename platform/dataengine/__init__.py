"""Django project package: settings, URLs and the ASGI/WSGI entry points.

It does not import ``workers``: the web process sends tasks through ``settings.TASK_SENDER``,
which configures the Celery app on first use.
"""

import platform as _stdlib_platform

# Guard: a platform/__init__.py would shadow the standard library and break uuid and Celery.
assert hasattr(_stdlib_platform, "system"), "the standard library's platform module is shadowed"
