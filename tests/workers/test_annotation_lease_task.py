"""The beat task that returns expired annotation leases to the queue."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from engine.annotation import leases
from engine.models import Assignment
from tests.engine.annotation._annotation import video
from workers.celery import app
from workers.tasks.annotation import expire_annotation_leases


def test_beat_runs_the_sweep_on_the_default_queue() -> None:
    entry = app.conf.beat_schedule["expire-annotation-leases"]
    assert entry["task"] == "workers.expire_annotation_leases"
    assert entry["options"]["queue"] == "default"
    assert app.tasks["workers.expire_annotation_leases"].name == expire_annotation_leases.name


def test_the_task_expires_leases(project, annotator) -> None:
    video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    Assignment.objects.filter(pk=lease.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expire_annotation_leases() == 1
    lease.refresh_from_db()
    assert lease.state == Assignment.State.CANCELLED
