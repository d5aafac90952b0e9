"""Leased work items: a lease that is not renewed expires and the work returns to the queue.

Review assignments are leased while a reviewer has a masklet open; fix assignments belong to
an annotator (or to nobody, for auto masklets, until an annotator of the project takes one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from engine.models import Assignment, Masklet, User


@dataclass(frozen=True)
class LeaseConfig:
    """How long a reviewer holds a masklet before it goes back to the queue."""

    review_lease: timedelta = timedelta(minutes=30)


DEFAULT_LEASES = LeaseConfig()


def active_review_leases() -> QuerySet[Assignment]:
    """Review assignments whose lease has not expired (the masklet is with that reviewer)."""
    return Assignment.objects.filter(
        kind=Assignment.Kind.REVIEW,
        state=Assignment.State.LEASED,
        lease_expires_at__gt=timezone.now(),
    )


def leased_by_others(user: User) -> QuerySet[Masklet]:
    """Masklets another reviewer holds an unexpired review lease on."""
    held = active_review_leases().exclude(user=user).values("masklet_id")
    return Masklet.objects.filter(pk__in=held)


def expire_review_leases() -> int:
    """Mark expired review leases cancelled; return how many. Purely bookkeeping: expired
    leases are already ignored by the queue, so this only tidies the table."""
    return Assignment.objects.filter(
        kind=Assignment.Kind.REVIEW,
        state=Assignment.State.LEASED,
        lease_expires_at__lte=timezone.now(),
    ).update(state=Assignment.State.CANCELLED)


def do_lease_review(
    user: User, masklet: Masklet, config: LeaseConfig = DEFAULT_LEASES
) -> Assignment:
    """Give ``user`` (or renew) a review lease on ``masklet``; the caller holds the masklet lock."""
    expires = timezone.now() + config.review_lease
    mine = active_review_leases().filter(user=user, masklet=masklet).first()
    if mine is not None:
        mine.lease_expires_at = expires
        mine.save(update_fields=["lease_expires_at"])
        return mine
    return Assignment.objects.create(
        kind=Assignment.Kind.REVIEW,
        state=Assignment.State.LEASED,
        user=user,
        video_id=masklet.video_id,
        masklet=masklet,
        lease_expires_at=expires,
    )


def close_review_leases(masklet: Masklet) -> None:
    """A verdict was given: every open review lease on the masklet is done."""
    Assignment.objects.filter(
        kind=Assignment.Kind.REVIEW,
        masklet=masklet,
        state__in=[Assignment.State.OPEN, Assignment.State.LEASED],
    ).update(state=Assignment.State.DONE, completed_at=timezone.now())


def close_fix_assignments(masklet: Masklet) -> None:
    """The masklet went back to review: its pending fix assignments are done."""
    Assignment.objects.filter(
        kind=Assignment.Kind.FIX,
        masklet=masklet,
        state__in=[Assignment.State.OPEN, Assignment.State.LEASED],
    ).update(state=Assignment.State.DONE, completed_at=timezone.now())


def open_fix_assignments(user: User) -> QuerySet[Assignment]:
    """Fix assignments ``user`` may work on: theirs, or unassigned ones in projects where they
    annotate (auto masklets have no author to send them back to)."""
    from engine.accounts.access import projects_for_user

    pending = [Assignment.State.OPEN, Assignment.State.LEASED]
    return (
        Assignment.objects.filter(kind=Assignment.Kind.FIX, state__in=pending)
        .filter(Q(user=user) | Q(user__isnull=True, video__project__in=projects_for_user(user)))
        .select_related("masklet", "video", "video__project", "user")
        .order_by("created_at", "id")
    )
