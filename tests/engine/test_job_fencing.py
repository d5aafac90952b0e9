"""Writes of a running job are fenced by (id, attempt): a worker whose job was reclaimed as a
newer attempt (recovery sweep or broker redelivery) cannot overwrite the newer attempt's
progress, result or error, and stops at its next progress report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from engine.jobs.lifecycle import (
    JobReporter,
    JobSuperseded,
    claim_job,
    fail_job,
    finish_job,
    run_job,
)
from engine.models import Job


def _reclaimed(settings: Any) -> tuple[Job, Job]:
    """(attempt 1 as its worker holds it, attempt 2 after a redelivery reclaimed it)."""
    settings.JOB_STALE_SECONDS = 300
    job = Job.objects.create(kind=Job.Kind.EXPORT)
    first = claim_job(job.pk)
    assert first is not None
    # attempt 1's worker stops reporting; its message is redelivered and claimed again
    stale = timezone.now() - timedelta(seconds=600)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    second = claim_job(job.pk)
    assert second is not None
    assert (first.attempt, second.attempt) == (1, 2)
    JobReporter(second).progress(0.4, "attempt 2 at work", force=True)
    return first, second


def _row(job: Job) -> tuple[Any, ...]:
    return tuple(
        Job.objects.filter(pk=job.pk)
        .values_list("status", "attempt", "progress", "message", "result", "error", "finished_at")
        .get()
    )


@pytest.mark.django_db
def test_superseded_attempt_cannot_finish_fail_or_report(settings: Any) -> None:
    # given attempt 1's job object after the job was reclaimed as attempt 2
    first, second = _reclaimed(settings)
    before = _row(second)
    assert before[:4] == (Job.Status.RUNNING, 2, 0.4, "attempt 2 at work")
    # when attempt 1 reports, finishes and fails, then the row is unchanged each time
    with pytest.raises(JobSuperseded):
        JobReporter(first).progress(0.9, "attempt 1 still here", force=True)
    assert _row(second) == before
    assert finish_job(first, {"key": "attempt-1"}) is False
    assert _row(second) == before
    assert fail_job(first, "attempt 1 crashed") is False
    assert fail_job(first, "attempt 1 cancelled", cancelled=True) is False
    assert _row(second) == before
    # and the current attempt still writes
    assert finish_job(second, {"key": "attempt-2"}) is True
    second.refresh_from_db()
    assert (second.status, second.result) == (Job.Status.SUCCEEDED, {"key": "attempt-2"})


@pytest.mark.django_db
def test_a_job_sent_back_to_queued_is_no_longer_its_old_workers(settings: Any) -> None:
    # the recovery sweep puts a lost worker's job back to queued (same attempt number)
    job = Job.objects.create(kind=Job.Kind.EXPORT)
    first = claim_job(job.pk)
    assert first is not None
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
    with pytest.raises(JobSuperseded):
        JobReporter(first).progress(0.5, force=True)
    assert finish_job(first, {"x": 1}) is False
    assert fail_job(first, "late") is False
    job.refresh_from_db()
    assert (job.status, job.progress, job.result, job.error) == (Job.Status.QUEUED, 0.0, {}, "")


@pytest.mark.django_db
def test_run_job_stops_a_superseded_worker_without_cleanup_or_writes(settings: Any) -> None:
    # given a job that is reclaimed as attempt 2 while attempt 1's work runs
    settings.JOB_STALE_SECONDS = 300
    job = Job.objects.create(kind=Job.Kind.EXPORT)
    cleaned: list[str] = []

    def work(claimed: Job, reporter: JobReporter) -> dict[str, Any]:
        stale = timezone.now() - timedelta(seconds=600)
        Job.objects.filter(pk=claimed.pk).update(heartbeat_at=stale)
        assert claim_job(claimed.pk) is not None  # attempt 2 starts elsewhere
        reporter.progress(0.5, "attempt 1", force=True)
        return {"never": "written"}

    # when attempt 1 reports progress
    run_job(
        job.pk, work, expected=(), internal_error="boom", on_failure=lambda j, m: cleaned.append(m)
    )
    # then it stopped quietly: attempt 2's row is untouched and its output was not discarded
    job.refresh_from_db()
    assert (job.status, job.attempt, job.progress, job.result) == (Job.Status.RUNNING, 2, 0.0, {})
    assert cleaned == []


@pytest.mark.django_db
def test_run_job_does_not_fail_or_clean_up_a_job_a_newer_attempt_holds(settings: Any) -> None:
    settings.JOB_STALE_SECONDS = 300
    job = Job.objects.create(kind=Job.Kind.EXPORT)
    cleaned: list[str] = []

    def work(claimed: Job, reporter: JobReporter) -> dict[str, Any]:
        stale = timezone.now() - timedelta(seconds=600)
        Job.objects.filter(pk=claimed.pk).update(heartbeat_at=stale)
        assert claim_job(claimed.pk) is not None
        raise ValueError("attempt 1 hit an error after losing the job")

    run_job(
        job.pk,
        work,
        expected=(ValueError,),
        internal_error="boom",
        on_failure=lambda j, m: cleaned.append(m),
    )
    job.refresh_from_db()
    assert (job.status, job.attempt, job.error) == (Job.Status.RUNNING, 2, "")
    assert cleaned == []
