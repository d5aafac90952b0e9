"""Jobs are sent by task name after commit, through the sender the settings name; kinds that no
worker runs are refused; the web process loads Celery only when it first sends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import redis

from engine.errors import Unavailable
from engine.jobs.lifecycle import JOB_TASKS, NoWorkerForKind, do_create_job
from engine.models import Job
from tests._services import REPO

SENT: list[tuple[str, list[Any], str]] = []


def record_send(name: str, args: list[Any], queue: str) -> None:
    """A ``TASK_SENDER`` for these tests."""
    SENT.append((name, args, queue))


@pytest.fixture
def sent(settings: Any) -> list[tuple[str, list[Any], str]]:
    settings.TASK_SENDER = f"{__name__}.record_send"
    SENT.clear()
    return SENT


@pytest.mark.django_db
def test_job_task_is_sent_by_name_after_commit(
    sent: list[tuple[str, list[Any], str]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job = do_create_job(Job.Kind.AUTO_MASKLETS, args={"video_id": 1})
        assert sent == []  # not before the row is committed
    assert sent == [("workers.auto_masklets", [job.pk], "propagate")]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(set(Job.Kind.values) - set(JOB_TASKS)))
def test_a_kind_no_worker_runs_is_refused(
    kind: str, sent: list[tuple[str, list[Any], str]], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(NoWorkerForKind) as err:
        do_create_job(kind)
    assert isinstance(err.value, Unavailable)
    assert str(err.value) == f"No worker runs {kind!r} jobs yet"
    assert not Job.objects.exists()
    assert sent == []


WEB_PROCESS = """
import json, sys
import django
django.setup()
import dataengine.urls  # everything the web process imports to serve requests
before = sorted(m for m in ("workers", "celery") if m in sys.modules)
from engine.jobs.dispatch import send_task_on_commit
send_task_on_commit("workers.ingest_video", [7], queue="default")  # no transaction: at once
from workers.celery import app
print(json.dumps({"before": before, "broker": app.conf.broker_url}))
"""


def test_web_process_configures_celery_on_its_first_send(redis_broker: str) -> None:
    # given a fresh process set up like the web server, sending to the test Redis
    env = {**os.environ, "CELERY_BROKER_URL": redis_broker}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "platform")])
    # when it sends a task
    out = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # then neither workers nor Celery was loaded before, and the message reached the broker
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"before": [], "broker": redis_broker}
    [raw] = redis.Redis.from_url(redis_broker).lrange("default", 0, -1)
    assert json.loads(raw)["headers"]["task"] == "workers.ingest_video"
