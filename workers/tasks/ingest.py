"""Ingest task: decode an uploaded video into frames (``engine.videos.ingest`` does the work)."""

from __future__ import annotations

from celery import shared_task

from engine.videos import ingest


@shared_task(name="workers.ingest_video", acks_late=True, ignore_result=True)
def ingest_video(job_id: int) -> None:
    ingest.run_ingest_job(job_id)
