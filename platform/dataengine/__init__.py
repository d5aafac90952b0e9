"""Django project package: settings, URLs and the ASGI/WSGI entry points."""

import platform as _stdlib_platform

# Guard: a platform/__init__.py would shadow the standard library and break uuid and Celery.
assert hasattr(_stdlib_platform, "system"), "the standard library's platform module is shadowed"

from workers.celery import app as celery_app  # noqa: E402  (sends tasks from the web process)

__all__ = ["celery_app"]
