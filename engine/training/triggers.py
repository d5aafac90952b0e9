"""When rounds start on their own: per-project round settings and the beat sweep.

A project's :class:`~engine.models.RoundSettings` (edited by its managers) fire a round when
enabled and either

- at least ``min_new_masklets`` verified masklets are new since the last round: their current
  revision is not in the last round's snapshot (a re-verified fix counts as new), or
- ``interval_hours`` have passed since the project's last round job was created.

:func:`do_start_due_rounds` runs every minute on Celery beat; a project with a round queued or
running is skipped, so a trigger never starts two rounds at once, and a round that failed
without new data does not fire again on the count.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from engine.accounts import access
from engine.errors import Conflict, InvalidInput
from engine.models import Job, Masklet, Project, Round, RoundSettings, User

logger = logging.getLogger(__name__)

MAX_MIN_NEW = 1_000_000
MAX_INTERVAL_HOURS = 24 * 365
MAX_STEPS = 1_000_000


def get_round_settings(project: Project) -> RoundSettings:
    row, _ = RoundSettings.objects.get_or_create(project=project)
    return row


def _number(value: Any, name: str, cast: type, lo: float, hi: float) -> Any:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number from {lo} to {hi}")
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number from {lo} to {hi}") from None
    if cast is float and number != number:  # NaN
        raise InvalidInput(f"{name} must be a number from {lo} to {hi}")
    if not lo <= number <= hi:
        raise InvalidInput(f"{name} must be a number from {lo} to {hi}")
    return number


@transaction.atomic
def do_update_round_settings(
    user: User,
    project: Project,
    *,
    enabled: bool | None = None,
    min_new_masklets: Any = None,
    interval_hours: Any = None,
    steps: Any = None,
) -> RoundSettings:
    """Change the project's round settings (its managers only); None leaves a field as is."""
    access.access_project_as_manager(user, project.pk)
    row = RoundSettings.objects.select_for_update().get(pk=get_round_settings(project).pk)
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled must be true or false")
        row.enabled = enabled
    if min_new_masklets is not None:
        row.min_new_masklets = _number(min_new_masklets, "min_new_masklets", int, 0, MAX_MIN_NEW)
    if interval_hours is not None:
        row.interval_hours = _number(
            interval_hours, "interval_hours", float, 0.0, MAX_INTERVAL_HOURS
        )
    if steps is not None:
        row.steps = _number(steps, "steps", int, 1, MAX_STEPS)
    row.updated_by = user
    row.save()
    return row


def last_round(project: Project) -> Round | None:
    return Round.objects.filter(project=project).order_by("-number").first()


def new_verified_count(project: Project) -> int:
    """Verified masklets whose current revision is not in the last round's snapshot."""
    verified = Masklet.objects.filter(
        video__project=project, status=Masklet.Status.VERIFIED, current_revision__isnull=False
    )
    previous = last_round(project)
    snapshot_id = (previous.metrics or {}).get("snapshot_id") if previous else None
    if snapshot_id:
        from engine.models import DatasetSnapshot

        snapshot = DatasetSnapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is not None:
            verified = verified.exclude(current_revision_id__in=snapshot.revisions.values("pk"))
    return verified.count()


def last_round_job_at(project: Project) -> datetime | None:
    job = Job.objects.filter(project=project, kind=Job.Kind.TRAIN).order_by("-created_at").first()
    return job.created_at if job else None


def due_reason(project: Project, row: RoundSettings, now: datetime) -> str | None:
    """Why a round of ``project`` should start now, or None."""
    if not row.enabled:
        return None
    if row.min_new_masklets > 0:
        count = new_verified_count(project)
        if count >= row.min_new_masklets:
            return f"{count} new verified masklets (threshold {row.min_new_masklets})"
    if row.interval_hours > 0:
        last = last_round_job_at(project)
        if last is None or now - last >= timedelta(hours=row.interval_hours):
            return f"schedule: every {row.interval_hours:g} h"
    return None


def do_start_due_rounds(now: datetime | None = None) -> list[int]:
    """Start a round for every project whose trigger fires; returns the new jobs' ids."""
    from engine.training.rounds import active_round_job, do_start_round

    now = now or timezone.now()
    started: list[int] = []
    for row in RoundSettings.objects.filter(enabled=True).select_related("project"):
        project = row.project
        if active_round_job(project) is not None:
            continue
        reason = due_reason(project, row, now)
        if reason is None:
            continue
        try:
            job = do_start_round(None, project, steps=row.steps, reason=f"trigger: {reason}")
        except Conflict:
            continue
        logger.info("round of project %s started by its trigger: %s", project.pk, reason)
        started.append(job.pk)
    return started
