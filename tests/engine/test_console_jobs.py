"""The queues-and-jobs console: jobs per queue, workers, leases, retry; finished jobs' messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from engine.errors import Conflict, NotFound, PermissionDenied
from engine.jobs import lifecycle, overview
from engine.models import Assignment, Job, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Task messages this test sends (name, args, queue), instead of a broker."""
    messages: list[tuple[str, list, str]] = []
    monkeypatch.setattr(
        "engine.jobs.dispatch._send_now",
        lambda name, args, queue: messages.append((name, args, queue)),
    )
    return messages


def _job(project, kind=Job.Kind.EXPORT, **fields):
    return Job.objects.create(kind=kind, project=project, **fields)


def test_queues_group_waiting_running_and_failed_jobs(project, manager):
    waiting = _job(project)
    running = _job(project, Job.Kind.AUTO_MASKLETS, status=Job.Status.RUNNING, worker="gpu1:7")
    failed = _job(project, status=Job.Status.FAILED, error="disk full", finished_at=timezone.now())
    _job(project, status=Job.Status.SUCCEEDED)
    states = {q.name: q for q in overview.queues(manager)}
    assert states["default"].waiting == [waiting]
    assert states["propagate"].running == [running]
    assert states["default"].failed == [failed]
    assert states["default"].failed[0].error == "disk full"
    assert states["default"].running == []


def test_members_who_manage_nothing_are_refused_and_see_no_other_projects(
    project, annotator, outsider
):
    with pytest.raises(PermissionDenied):
        overview.queues(annotator)
    with pytest.raises(PermissionDenied):
        overview.leases_held(outsider)


def test_workers_seen_from_job_heartbeats(project, manager):
    now = timezone.now()
    _job(project, status=Job.Status.RUNNING, worker="gpu1:7", heartbeat_at=now)
    _job(
        project,
        status=Job.Status.SUCCEEDED,
        worker="gpu2:9",
        heartbeat_at=now - timedelta(hours=1),
    )
    seen = {w.name: w for w in overview.workers_seen(manager)}
    assert seen["gpu1:7"].running == 1
    assert seen["gpu1:7"].alive
    assert seen["gpu2:9"].running == 0
    assert not seen["gpu2:9"].alive


def test_leases_held_lists_annotation_and_review_leases_in_force(project, manager, annotator):
    video = Video.objects.create(project=project, name="v.mp4", status=Video.Status.READY)
    soon = timezone.now() + timedelta(minutes=10)
    held = Assignment.objects.create(
        kind=Assignment.Kind.ANNOTATE,
        state=Assignment.State.LEASED,
        user=annotator,
        video=video,
        lease_expires_at=soon,
    )
    Assignment.objects.create(  # expired: not held
        kind=Assignment.Kind.ANNOTATE,
        state=Assignment.State.LEASED,
        user=annotator,
        video=video,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )
    assert overview.leases_held(manager) == [held]


def test_retry_sends_a_failed_job_again(project, manager, sent, django_capture_on_commit_callbacks):
    job = _job(project, status=Job.Status.FAILED, error="boom", attempt=1, message="step 3/9")
    with django_capture_on_commit_callbacks(execute=True):
        retried = overview.do_retry_job(manager, job.pk)
    assert (retried.status, retried.error, retried.attempt) == (Job.Status.QUEUED, "", 1)
    assert sent == [("workers.run_export", [job.pk], "default")]
    # the retried job is claimed as a new attempt
    claimed = lifecycle.claim_job(job.pk)
    assert claimed is not None
    assert claimed.attempt == 2


def test_retry_refuses_live_jobs_and_non_managers(project, manager, annotator, outsider, sent):
    running = _job(project, status=Job.Status.RUNNING)
    with pytest.raises(Conflict):
        overview.do_retry_job(manager, running.pk)
    failed = _job(project, status=Job.Status.FAILED)
    with pytest.raises(PermissionDenied):
        overview.do_retry_job(annotator, failed.pk)
    with pytest.raises(NotFound):
        overview.do_retry_job(outsider, failed.pk)
    assert Job.objects.get(pk=failed.pk).status == Job.Status.FAILED
    assert sent == []


def test_finished_and_failed_jobs_drop_their_last_progress_message(project):
    for end in ("finish", "fail"):
        job = _job(project, status=Job.Status.QUEUED)
        claimed = lifecycle.claim_job(job.pk)
        assert claimed is not None
        lifecycle.JobReporter(claimed).progress(0.5, "stored frame 6/12", force=True)
        assert Job.objects.get(pk=job.pk).message == "stored frame 6/12"
        if end == "finish":
            lifecycle.finish_job(claimed, {"frame_count": 12})
        else:
            lifecycle.fail_job(claimed, "bad file")
        assert Job.objects.get(pk=job.pk).message == ""
