"""The quality sweep (Celery beat): retrain the quality estimators when enough new verdicts
arrived, score masklets waiting for review, auto-accept where managers switched it on."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from engine.quality.sweep import do_quality_sweep
from engine.quality.training import QualityPolicy


# A sweep decodes the masks of newly submitted masklets once; bounded, on the default queue.
@shared_task(
    name="workers.quality_sweep",
    ignore_result=True,
    soft_time_limit=20 * 60,
    time_limit=21 * 60,
)
def quality_sweep() -> dict[str, Any]:
    policy = QualityPolicy(
        min_per_class=settings.QUALITY_MIN_VERDICTS_PER_CLASS,
        retrain_after=settings.QUALITY_RETRAIN_AFTER_VERDICTS,
    )
    return do_quality_sweep(policy)
