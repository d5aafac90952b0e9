"""Recovery of jobs whose worker or task message was lost (the Celery beat sweep).

Resent tasks go to the real test Redis; the test reads them back from its queues.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from engine.jobs.lifecycle import JOB_TASKS, claim_job
from engine.jobs.recovery import do_recover_orphaned_jobs
from engine.models import Job, Video, frame_key
from engine.videos import storage


def _sent(redis_url: str, queue: str) -> list[tuple[str, list]]:
    """(task name, args) of the messages waiting in a Redis queue."""
    out = []
    for raw in redis.Redis.from_url(redis_url).lrange(queue, 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        out.append((message["headers"]["task"], args))
    return out


def _job(kind: str, status: str, *, age_s: float = 0, heartbeat_age_s: float | None = None, **kw):
    job = Job.objects.create(kind=kind, status=status, **kw)
    now = timezone.now()
    heartbeat = None if heartbeat_age_s is None else now - timedelta(seconds=heartbeat_age_s)
    Job.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=age_s), heartbeat_at=heartbeat
    )
    return job


def _recover(capture) -> dict[str, list[int]]:
    with capture(execute=True):
        return do_recover_orphaned_jobs()


@pytest.fixture
def stale(settings) -> int:
    settings.JOB_STALE_SECONDS = 300
    settings.JOB_MAX_ATTEMPTS = 3
    return 600  # seconds: older than JOB_STALE_SECONDS


@pytest.mark.django_db
def test_job_of_a_lost_worker_is_queued_again_and_claimed_as_next_attempt(
    redis_broker, django_capture_on_commit_callbacks, stale
):
    job = _job("ingest", "running", age_s=stale, heartbeat_age_s=stale, attempt=1, worker="gpu1:7")
    done = _recover(django_capture_on_commit_callbacks)
    assert done == {"resent": [job.pk], "failed": [], "cancelled": []}
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    assert "gpu1:7 was lost" in job.message
    assert _sent(redis_broker, "default") == [("workers.ingest_video", [job.pk])]
    # the resent message's claim is attempt 2; a second sweep finds nothing to do
    claimed = claim_job(job.pk)
    assert claimed is not None
    assert (claimed.attempt, claimed.status) == (2, Job.Status.RUNNING)
    assert _recover(django_capture_on_commit_callbacks) == {
        "resent": [],
        "failed": [],
        "cancelled": [],
    }
    assert len(_sent(redis_broker, "default")) == 1


@pytest.mark.django_db
def test_lost_message_is_resent_once_per_stale_period_unless_its_queue_is_busy(
    redis_broker, django_capture_on_commit_callbacks, stale
):
    # a worker is busy on the default queue: its backlog is waiting, not lost
    _job("export", "running", heartbeat_age_s=5, attempt=1)
    backlog = _job("ingest", "queued", age_s=stale)
    # nothing runs on the propagate queue, and this job has waited past the stale period
    lost = _job("auto_masklets", "queued", age_s=stale)
    recent = _job("auto_masklets", "queued", age_s=10)
    cancelled = _job("auto_masklets", "queued", age_s=stale, cancel_requested=True)
    done = _recover(django_capture_on_commit_callbacks)
    assert done["resent"] == [lost.pk]
    assert _sent(redis_broker, "propagate") == [("workers.auto_masklets", [lost.pk])]
    assert _sent(redis_broker, "default") == []
    # resent just now: the next sweep waits another stale period before sending it again
    assert _recover(django_capture_on_commit_callbacks)["resent"] == []
    Job.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=stale))
    assert _recover(django_capture_on_commit_callbacks)["resent"] == [lost.pk]
    for job in (backlog, recent, cancelled):
        job.refresh_from_db()
        assert job.status == Job.Status.QUEUED


@pytest.mark.django_db
def test_job_that_keeps_losing_its_worker_fails_and_cancel_requests_are_honoured(
    redis_broker, django_capture_on_commit_callbacks, stale
):
    fatal = _job("ingest", "running", heartbeat_age_s=stale, attempt=3, worker="w:1")
    stopping = _job("export", "running", heartbeat_age_s=stale, attempt=1, cancel_requested=True)
    done = _recover(django_capture_on_commit_callbacks)
    assert done == {"resent": [], "failed": [fatal.pk], "cancelled": [stopping.pk]}
    fatal.refresh_from_db()
    stopping.refresh_from_db()
    assert fatal.status == Job.Status.FAILED
    assert fatal.error == "its worker was lost during each of 3 attempts (last: w:1)"
    assert fatal.finished_at is not None
    assert stopping.status == Job.Status.CANCELLED
    assert _sent(redis_broker, "default") == []


@pytest.mark.django_db
def test_jobs_of_a_kind_no_worker_runs_fail_instead_of_being_resent_forever(
    redis_broker, django_capture_on_commit_callbacks, stale, monkeypatch
):
    # rows of a kind without a task (here training, its route taken away)
    monkeypatch.delitem(JOB_TASKS, "train")
    lost = _job("train", "running", heartbeat_age_s=stale, attempt=1, worker="w:1")
    waiting = _job("train", "queued", age_s=stale)
    done = _recover(django_capture_on_commit_callbacks)
    assert done == {"resent": [], "failed": [lost.pk, waiting.pk], "cancelled": []}
    for job in (lost, waiting):
        job.refresh_from_db()
        assert job.status == Job.Status.FAILED
        assert job.error == "no worker runs 'train' jobs"
    assert _sent(redis_broker, "train") == []


@pytest.mark.django_db
def test_ingest_that_keeps_losing_its_worker_fails_its_video_and_drops_its_frames(
    redis_broker, django_capture_on_commit_callbacks, stale, project
):
    video = Video.objects.create(project=project, name="clip.mp4", status=Video.Status.DECODING)
    storage.put_file(frame_key(video.pk, 0), io.BytesIO(b"partial frame"))
    fatal = _job(
        "ingest", "running", heartbeat_age_s=stale, attempt=3, worker="w:1",
        args={"video_id": video.pk}, video=video,
    )  # fmt: skip
    assert _recover(django_capture_on_commit_callbacks)["failed"] == [fatal.pk]
    video.refresh_from_db()
    # not "decoding" forever: failed with the job's reason, nothing left in storage
    assert video.status == Video.Status.FAILED
    assert video.error == "its worker was lost during each of 3 attempts (last: w:1)"
    assert list(storage.iter_keys(video.frames_prefix)) == []
