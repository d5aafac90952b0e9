"""Why submitted masklets are not in a reviewer's queue: their own work, or another's lease.

The queue (``engine.review.queue.review_queue``) leaves out masklets the user wrote a revision
of (nobody reviews their own work) and masklets another reviewer has open; the queue page says
how many of each wait, so "0 waiting" never hides 8 masklets.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.models import Masklet, MaskletRevision, Project, User
from engine.review.leases import leased_by_others


@dataclass(frozen=True)
class NotInQueue:
    own_work: int
    with_other_reviewers: int


def not_in_queue(user: User, project: Project) -> NotInQueue:
    submitted = Masklet.objects.filter(
        video__project=project, status=Masklet.Status.SUBMITTED, current_revision__isnull=False
    )
    own = submitted.filter(pk__in=MaskletRevision.objects.filter(author=user).values("masklet_id"))
    others = submitted.exclude(pk__in=own.values("pk")).filter(
        pk__in=leased_by_others(user).values("pk")
    )
    return NotInQueue(own_work=own.count(), with_other_reviewers=others.count())
