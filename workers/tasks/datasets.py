"""Celery tasks (export, import): thin wrappers that load by id and call engine/."""

from __future__ import annotations

from celery import shared_task

from engine.datasets import export, importing

# Exports and imports stream masks, so even a large dataset takes minutes, not hours.
LIMITS = {"soft_time_limit": 55 * 60, "time_limit": 60 * 60}


@shared_task(name="workers.run_export", acks_late=True, ignore_result=True, **LIMITS)
def run_export(job_id: int) -> None:
    export.run_export_job(job_id)


@shared_task(name="workers.run_import", acks_late=True, ignore_result=True, **LIMITS)
def run_import(job_id: int) -> None:
    importing.run_import_job(job_id)
