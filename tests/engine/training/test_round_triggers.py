"""Round triggers: N new verified masklets since the last round, and a schedule; never a second
round while one is queued or running; a disabled project never starts one."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from engine.datasets.snapshots import do_create_snapshot
from engine.models import Job, Masklet, MaskletRevision, Round
from engine.review.verdicts import do_review
from engine.training import triggers
from tests._masklets import ready_video, square, submitted_masklet

pytestmark = pytest.mark.django_db
sent_messages: list[tuple[str, list, str]] = []


def record_send(name: str, args: list, queue: str) -> None:
    sent_messages.append((name, args, queue))


@pytest.fixture(autouse=True)
def _sender(settings) -> None:
    settings.TASK_SENDER = f"{__name__}.record_send"
    sent_messages.clear()


def _verify(project, annotator, reviewer, count: int) -> None:
    video = ready_video(project, height=32, width=32, frame_count=3)
    for i in range(count):
        masks: dict[int, np.ndarray | None] = {t: square(32, 32, 2 + i, 2, 8) for t in range(3)}
        masklet = submitted_masklet(video, annotator, masks)
        do_review(_current(masklet), reviewer, "satisfactory")


def _finish(job_id: int, project, number: int) -> None:
    """What a finished round leaves: its job ended, its round row with the snapshot it used."""
    Job.objects.filter(pk=job_id).update(status=Job.Status.SUCCEEDED)
    snapshot = do_create_snapshot(project)
    Round.objects.create(
        project=project,
        number=number,
        phase=project.phase,
        job_id=job_id,
        metrics={"snapshot_id": snapshot.pk},
    )


def _enable(project, manager, **fields) -> None:
    triggers.do_update_round_settings(manager, project, enabled=True, **fields)


def test_n_new_verified_masklets_start_one_round(
    project, manager, annotator, reviewer, django_capture_on_commit_callbacks
) -> None:
    _enable(project, manager, min_new_masklets=2, interval_hours=0, steps=11)
    _verify(project, annotator, reviewer, 1)
    assert triggers.do_start_due_rounds() == []
    _verify(project, annotator, reviewer, 1)
    with django_capture_on_commit_callbacks(execute=True):
        started = triggers.do_start_due_rounds()
    assert len(started) == 1
    job = Job.objects.get(pk=started[0])
    assert (job.kind, job.args["steps"], job.project_id) == ("train", 11, project.pk)
    assert job.args["reason"].startswith("trigger: 2 new verified masklets")
    assert sent_messages == [("workers.train_round", [job.pk], "train")]
    # not twice: the round is still queued
    assert triggers.do_start_due_rounds() == []
    # once it ran, the masklets it snapshotted are not new any more
    _finish(job.pk, project, 1)
    assert triggers.new_verified_count(project) == 0
    assert triggers.do_start_due_rounds() == []
    _verify(project, annotator, reviewer, 2)
    assert triggers.new_verified_count(project) == 2
    assert len(triggers.do_start_due_rounds()) == 1


def test_the_schedule_starts_a_round_every_interval(project, manager) -> None:
    _enable(project, manager, min_new_masklets=0, interval_hours=1)
    now = timezone.now()
    first = triggers.do_start_due_rounds(now)
    assert len(first) == 1
    assert triggers.do_start_due_rounds(now + timedelta(hours=2)) == []  # still queued
    _finish(first[0], project, 1)
    assert triggers.do_start_due_rounds(now + timedelta(minutes=30)) == []
    second = triggers.do_start_due_rounds(now + timedelta(minutes=61))
    assert len(second) == 1
    assert Job.objects.get(pk=second[0]).args["reason"] == "trigger: schedule: every 1 h"


def test_a_disabled_project_never_starts_a_round(project, manager, annotator, reviewer) -> None:
    triggers.do_update_round_settings(
        manager, project, enabled=False, min_new_masklets=1, interval_hours=1
    )
    _verify(project, annotator, reviewer, 2)
    assert triggers.do_start_due_rounds(timezone.now() + timedelta(days=3)) == []
    assert not Job.objects.exists()


def test_only_managers_change_round_settings(project, annotator) -> None:
    with pytest.raises(triggers.access.AccessDenied):
        triggers.do_update_round_settings(annotator, project, enabled=True)
    assert triggers.get_round_settings(project).enabled is False


@pytest.mark.parametrize(
    "fields",
    [{"min_new_masklets": -1}, {"interval_hours": float("nan")}, {"steps": 0}, {"enabled": "yes"}],
)
def test_bad_settings_are_refused(project, manager, fields) -> None:
    with pytest.raises(triggers.InvalidInput):
        triggers.do_update_round_settings(manager, project, **fields)


def _current(masklet: Masklet) -> MaskletRevision:
    assert masklet.current_revision is not None
    return masklet.current_revision
