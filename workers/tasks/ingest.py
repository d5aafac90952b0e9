"""Ingest task: decode an uploaded video into frames (``engine.videos.ingest`` does the work)."""

from __future__ import annotations

from celery import shared_task

from engine.videos import ingest


# A 10-minute 4K upload decodes in minutes; past the soft limit the job fails cleanly (its
# frames are discarded) before the hard limit kills the process.
@shared_task(
    name="workers.ingest_video",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=25 * 60,
    time_limit=30 * 60,
)
def ingest_video(job_id: int) -> None:
    ingest.run_ingest_job(job_id)
