"""Task names are part of the message format: queued messages and schedules refer to them."""

import json

from engine.jobs.lifecycle import JOB_TASKS
from workers.celery import app


def test_task_names_are_pinned() -> None:
    app.loader.import_default_modules()
    assert "workers.ingest_video" in app.tasks
    assert JOB_TASKS["ingest"] == ("workers.ingest_video", "default")
    assert "workers.recover_orphaned_jobs" in app.tasks


def test_beat_schedules_the_job_recovery_sweep() -> None:
    entry = app.conf.beat_schedule["recover-orphaned-jobs"]
    assert entry["task"] == "workers.recover_orphaned_jobs"
    assert entry["schedule"] == 60.0


def test_queues_match_the_design() -> None:
    assert {q.name for q in app.conf.task_queues} == {
        "default",
        "interactive",
        "propagate",
        "train",
    }
    assert app.conf.task_serializer == "json"
    assert app.conf.task_acks_late is True


def test_task_arguments_survive_json() -> None:
    args = [42]
    assert json.loads(json.dumps(args)) == args
