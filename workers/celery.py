"""The Celery app. Start a worker with ``celery -A workers worker -Q default,interactive,...``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
for _path in (str(_ROOT / "platform"), str(_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataengine.settings")

from django.conf import settings as _settings  # noqa: E402

if not _settings.configured:
    # A worker process (this module loads before its settings): no connection pool (in
    # prefork, Celery's Django fixup closes the pool after every task, so it would only add
    # threads) but one persistent connection per pool process, which runs one task at a time:
    # a click's task would otherwise open a connection first (~5 ms). Celery's fixup closes it
    # when older than this or unusable (the settings' health checks: a restarted server).
    os.environ.setdefault("DB_POOL_MAX_SIZE", "0")
    os.environ.setdefault("DB_CONN_MAX_AGE", "600")

from celery import Celery  # noqa: E402
from kombu import Queue  # noqa: E402

app = Celery("dataengine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "interactive", "propagate", "train")]
app.conf.task_default_queue = "default"
# Explicit list: every task module is imported by web and worker processes alike.
app.conf.imports = (
    "workers.tasks.ingest",
    "workers.tasks.datasets",
    "workers.tasks.propagation",
    "workers.tasks.maintenance",
    "workers.tasks.annotation",
    "workers.tasks.interactive",
    "workers.tasks.training",
    "workers.tasks.quality",
)
