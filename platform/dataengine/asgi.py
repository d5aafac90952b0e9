"""ASGI entry point (uvicorn dataengine.asgi:application)."""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataengine.settings")

# The embedded default has no proxy in front, so the app serves its own static files.
application = ASGIStaticFilesHandler(get_asgi_application())
