"""The model-session sweep (Celery beat's ``workers.prune_model_sessions``) against a REAL
worker on Redis: the worker that answers its ping keeps its rows, a worker that is gone loses
them (past the grace), idle rows go whoever holds them; the schedule runs it on ``default``."""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from engine.models import ModelSession, Video
from tests._services import celery_worker, worker_env
from workers.celery import app
from workers.tasks import maintenance


def _row(video: Video, user: Any, worker: str, age_s: float) -> int:
    return int(
        ModelSession.objects.create(
            video=video,
            user=user,
            model_key="test_tiny:abc",
            worker=worker,
            queue=f"{worker}.dq2",
            last_used=timezone.now() - timedelta(seconds=age_s),
        ).pk
    )


def _wait_for_pong(name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(name in reply for reply in app.control.ping(timeout=1.0) or ()):
            return
    raise AssertionError(f"worker {name} never answered a ping")


@pytest.mark.django_db(transaction=True)
def test_sweep_keeps_the_live_workers_rows_and_drops_the_lost_ones(
    project: Any, annotator: Any, redis_broker: str, tmp_path: Path, settings: Any
) -> None:
    settings.ANNOTATION_SESSION_IDLE_SECONDS = 1800
    settings.ANNOTATION_SESSION_LOST_GRACE_SECONDS = 120
    videos = [
        Video.objects.create(project=project, name=f"v{i}.mp4", status=Video.Status.READY)
        for i in range(4)
    ]
    live = f"inter@{socket.gethostname()}"
    env = worker_env(redis_broker, tmp_path)
    with celery_worker(env, tmp_path / "worker.log", "interactive", extra_args=("-n", live)):
        _wait_for_pong(live)
        quiet = _row(videos[0], annotator, live, 600)  # live worker, no click for 10 minutes
        fresh_lost = _row(videos[1], annotator, "inter@gone", 30)  # within the grace
        lost = _row(videos[2], annotator, "inter@gone", 600)
        idle = _row(videos[3], annotator, live, 3600)
        result = maintenance.prune_model_sessions()
    assert result == {"idle": [idle], "lost": [lost]}
    assert set(ModelSession.objects.values_list("pk", flat=True)) == {quiet, fresh_lost}


def test_beat_schedules_the_sweep_on_the_default_queue() -> None:
    entry: Any = django_settings.CELERY_BEAT_SCHEDULE["prune-model-sessions"]
    assert entry["task"] == "workers.prune_model_sessions"
    assert entry["options"]["queue"] == "default"
    assert 10 <= entry["schedule"] <= django_settings.ANNOTATION_SESSION_IDLE_SECONDS
