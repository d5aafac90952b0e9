"""Calibrated auto-accept: a manager's opt-in to verify very likely good masklets unreviewed.

Off by default. When a project manager switches it on with a threshold ``t``, a submitted
masklet whose calibrated acceptance probability ``1 - p(failure)`` is at least ``t`` becomes
verified without a reviewer. Never while the project has no trained estimator, never a masklet
a reviewer holds. The decision is kept on the revision's quality row (``auto_accepted``, the
probability, the threshold, the time), so auto-accepted masklets stay visible and auditable,
and it writes no ``Review`` row: the estimator only ever learns from people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from engine.accounts.access import AccessDenied, project_role
from engine.errors import InvalidInput
from engine.models import Masklet, Project, QualitySettings, Role, User
from engine.quality.scoring import current_estimator, do_score_revision
from engine.review import leases

MIN_THRESHOLD = 0.5
MAX_THRESHOLD = 0.999


def quality_settings(project: Project) -> QualitySettings:
    """The project's settings (defaults, unsaved, when never set: auto-accept off)."""
    found = QualitySettings.objects.filter(project=project).first()
    return found if found is not None else QualitySettings(project=project)


def may_manage_quality(user: User, project: Project) -> bool:
    return user.is_site_admin or project_role(user, project) == Role.MANAGER


@transaction.atomic
def do_set_auto_accept(
    user: User, project: Project, *, enabled: bool, threshold: float | None = None
) -> QualitySettings:
    """Switch auto-accept on or off (project managers and site admins only, else
    :class:`AccessDenied`); ``threshold`` in [0.5, 0.999] (:class:`InvalidInput`). Switching it
    on is allowed before an estimator is trained: nothing is accepted until one is.

    Locks the project's settings row.
    """
    if not may_manage_quality(user, project):
        raise AccessDenied("Only the project's managers may change auto-accept")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not math.isfinite(threshold)
        or not MIN_THRESHOLD <= threshold <= MAX_THRESHOLD
    ):
        raise InvalidInput(
            f"the auto-accept threshold must be between {MIN_THRESHOLD} and {MAX_THRESHOLD}"
        )
    row, _ = QualitySettings.objects.select_for_update().get_or_create(project=project)
    row.auto_accept = bool(enabled)
    if threshold is not None:
        row.auto_accept_threshold = float(threshold)
    row.updated_by = user
    row.save()
    return row


@dataclass(frozen=True)
class AutoAcceptDecision:
    accepted: bool
    reason: str
    acceptance_probability: float | None = None


def do_auto_accept(masklet: Masklet) -> AutoAcceptDecision:
    """Verify ``masklet`` without a reviewer when the project allows it and its calibrated
    acceptance probability reaches the threshold; otherwise say why not.

    Locks the masklet row, then checks: still submitted, auto-accept on, an estimator trained,
    no reviewer holding it, and the probability.
    """
    with transaction.atomic():
        locked = (
            Masklet.objects.select_for_update(of=("self",))
            .select_related("video", "video__project", "current_revision")
            .get(pk=masklet.pk)
        )
        project = locked.video.project
        config = quality_settings(project)
        if locked.status != Masklet.Status.SUBMITTED or locked.current_revision is None:
            return AutoAcceptDecision(False, f"the masklet is {locked.status}")
        if not config.auto_accept:
            return AutoAcceptDecision(False, "auto-accept is off for this project")
        loaded = current_estimator(project)
        if loaded is None:
            return AutoAcceptDecision(False, "no quality estimator is trained yet")
        if leases.active_review_leases().filter(masklet=locked).exists():
            return AutoAcceptDecision(False, "a reviewer has the masklet open")
        row = do_score_revision(locked.current_revision, loaded)
        assert row.failure_probability is not None
        accept = 1.0 - row.failure_probability
        if accept < config.auto_accept_threshold:
            return AutoAcceptDecision(False, "below the auto-accept threshold", accept)
        locked.status = Masklet.Status.VERIFIED
        locked.save(update_fields=["status", "updated_at"])
        leases.close_review_leases(locked)
        row.auto_accepted = True
        row.auto_accepted_at = timezone.now()
        row.auto_accept_threshold = config.auto_accept_threshold
        row.save(update_fields=["auto_accepted", "auto_accepted_at", "auto_accept_threshold"])
    masklet.status = locked.status
    return AutoAcceptDecision(True, "accepted", accept)


def do_auto_accept_waiting(project: Project) -> list[int]:
    """Try :func:`do_auto_accept` on every submitted masklet of the project; the accepted ids."""
    config = quality_settings(project)
    loaded = current_estimator(project)
    if not config.auto_accept or loaded is None:
        return []
    # Only candidates already scored sure enough; do_auto_accept re-checks each under lock.
    waiting = Masklet.objects.filter(
        video__project=project,
        status=Masklet.Status.SUBMITTED,
        current_revision__quality__quality_model=loaded.row,
        current_revision__quality__failure_probability__lte=1.0
        - config.auto_accept_threshold
        + 1e-9,
    )
    return [m.pk for m in waiting if do_auto_accept(m).accepted]
