"""Task names are part of the message format: queued messages and schedules refer to them.

Every job route names a task a worker registers, on the route's queue, with time limits that
suit that queue.
"""

from __future__ import annotations

import json

import pytest
from celery import Task

from engine.jobs.lifecycle import JOB_TASKS
from workers.celery import app

#: (shortest, longest) hard time limit, in seconds, that suits each queue: clicks wait seconds,
#: bookkeeping minutes, propagation and training hours (under Redis's 6 h visibility timeout,
#: or the broker would hand a running task to a second worker).
LIMITS_BY_QUEUE = {
    "interactive": (1, 60),
    "default": (60, 2 * 3600),
    "propagate": (3600, 6 * 3600),
    "train": (3600, 6 * 3600),
}


def _our_tasks() -> dict[str, Task]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.startswith("workers.")}


def _queue_of(name: str) -> str:
    """The queue Celery routes task `name` to when a send names none (``task_routes``)."""
    return str(app.amqp.router.route({}, name)["queue"].name)


def test_task_names_are_pinned() -> None:
    assert set(_our_tasks()) == {
        "workers.ingest_video",
        "workers.run_export",
        "workers.run_import",
        "workers.auto_masklets",
        "workers.recover_orphaned_jobs",
        "workers.expire_annotation_leases",
        "workers.annotation_prompt",
        "workers.annotation_warm",
        "workers.model_warm",
        "workers.propagate_masklet",
        "workers.train_round",
        "workers.start_due_rounds",
        "workers.quality_sweep",
        "workers.prune_model_sessions",
    }
    assert JOB_TASKS == {
        "ingest": ("workers.ingest_video", "default"),
        "export": ("workers.run_export", "default"),
        "import": ("workers.run_import", "default"),
        "auto_masklets": ("workers.auto_masklets", "propagate"),
        "propagate": ("workers.propagate_masklet", "propagate"),
        "train": ("workers.train_round", "train"),
    }


@pytest.mark.parametrize("kind", sorted(JOB_TASKS))
def test_every_job_route_names_a_registered_task_on_its_queue(kind: str) -> None:
    name, queue = JOB_TASKS[kind]
    task = _our_tasks().get(name)
    assert task is not None, f"no worker registers {name!r}, the task of {kind!r} jobs"
    assert _queue_of(name) == queue


def test_scheduled_tasks_are_registered_on_their_queue() -> None:
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in _our_tasks()
        assert _queue_of(entry["task"]) == entry["options"]["queue"]


@pytest.mark.parametrize("name", sorted(_our_tasks()))
def test_every_task_has_a_soft_limit_under_a_hard_limit_suited_to_its_queue(name: str) -> None:
    task, queue = _our_tasks()[name], _queue_of(name)
    assert queue in LIMITS_BY_QUEUE
    assert task.soft_time_limit is not None
    assert task.time_limit is not None
    assert 0 < task.soft_time_limit < task.time_limit
    shortest, longest = LIMITS_BY_QUEUE[queue]
    assert shortest <= task.time_limit <= longest
    visibility = app.conf.broker_transport_options.get("visibility_timeout")
    if visibility is not None:
        assert task.time_limit < visibility


def test_beat_schedules_the_job_recovery_sweep() -> None:
    entry = app.conf.beat_schedule["recover-orphaned-jobs"]
    assert entry["task"] == "workers.recover_orphaned_jobs"
    assert entry["schedule"] == 60.0


def test_every_task_has_an_explicit_route() -> None:
    # the default queue by omission would hide a propagate task sent to a CPU-only worker
    assert set(app.conf.task_routes) == set(_our_tasks())


def test_queues_match_the_design() -> None:
    assert {q.name for q in app.conf.task_queues} == set(LIMITS_BY_QUEUE)
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True


def test_job_task_arguments_survive_json() -> None:
    # every job task takes the job id alone: the message body a sender builds round-trips
    for name, queue in JOB_TASKS.values():
        message = app.amqp.as_task_v2("id-1", name, args=[42], kwargs={})
        body = json.loads(json.dumps(message.body))
        assert body[0] == [42], (name, queue)
        assert _our_tasks()[name].run.__code__.co_varnames[:1] == ("job_id",)
