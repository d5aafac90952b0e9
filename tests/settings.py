"""Django settings for the test run: the real settings with a random SECRET_KEY per run.

The real settings refuse to start without SECRET_KEY (outside demo mode). pytest-django imports
the settings before any conftest runs, so the key is set here; it goes into ``os.environ`` so the
processes the tests start (Celery workers, ``manage.py``) inherit it.
"""

from __future__ import annotations

import os
import secrets

if not (os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE")):
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)

from dataengine.settings import *  # noqa: E402, F403

# Personas are created for almost every test; the production hasher's iterations (hundreds of
# milliseconds each on a shared 2-core machine) would dominate the run. Hashing strength is not
# what these tests check; `tests/platform/test_settings.py` runs the real settings in children.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
