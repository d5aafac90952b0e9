"""Pruning :class:`~engine.models.ModelSession` rows nobody will use again (Celery beat).

A row routes an annotator's next click to the interactive worker holding their session
(:mod:`engine.annotation.serving`). Rows were never removed, so they piled up (one per annotator
and video ever served), and a row naming a worker that is gone costs the next click a wait of
``ANNOTATION_DIRECT_TIMEOUT_SECONDS`` before any worker rebuilds the session. A row goes when

- it is *idle*: unused for longer than ``ANNOTATION_SESSION_IDLE_SECONDS``, after which its
  worker has closed the session anyway (:class:`~engine.annotation.sessions.SessionCache`);
- or its worker is *lost*: the row names a worker's direct queue, that worker did not answer
  the sweep's ping (``live_workers``), and the row is older than ``ANNOTATION_SESSION_LOST_GRACE
  _SECONDS``. The grace covers a live worker too busy to answer (a solo pool answers a ping only
  between tasks; a click takes at most the interactive time limit): such a worker refreshes
  ``last_used`` as it answers, so its rows stay.

A live session is never broken: each delete re-checks its condition in the same statement, so
a click that refreshed ``last_used`` meanwhile keeps its row; and a click whose row was pruned
goes to any interactive worker, which rebuilds the session from the saved prompts (the same
masks) and records its route again. Rows without a direct queue (the simulation's in-process
worker) are only pruned when idle. ``live_workers=None`` (the ping failed): idle rows only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from engine.models import ModelSession

#: Default grace before a row of a worker that did not answer the ping is pruned (seconds):
#: twice the interactive queue's hard time limit (workers/tasks/interactive.py).
DEFAULT_LOST_GRACE_SECONDS = 120.0


@dataclass(frozen=True)
class PruneResult:
    """Ids of the rows deleted, by reason."""

    idle: list[int]
    lost: list[int]

    def to_json(self) -> dict[str, list[int]]:
        return {"idle": self.idle, "lost": self.lost}


def idle_seconds() -> float:
    return float(getattr(settings, "ANNOTATION_SESSION_IDLE_SECONDS", 1800))


def lost_grace_seconds() -> float:
    return float(
        getattr(settings, "ANNOTATION_SESSION_LOST_GRACE_SECONDS", DEFAULT_LOST_GRACE_SECONDS)
    )


def _delete(condition: Q) -> list[int]:
    """Delete the rows matching ``condition``; their ids. The delete repeats the condition, so a
    row refreshed between the read and the delete stays."""
    ids = list(ModelSession.objects.filter(condition).values_list("pk", flat=True))
    if ids:
        ModelSession.objects.filter(condition, pk__in=ids).delete()
        kept = set(ModelSession.objects.filter(pk__in=ids).values_list("pk", flat=True))
        ids = [pk for pk in ids if pk not in kept]
    return sorted(ids)


def do_prune_model_sessions(
    live_workers: Collection[str] | None, *, now: datetime | None = None
) -> PruneResult:
    """Delete idle rows, and rows of lost workers when ``live_workers`` (the names of the
    workers that answered a ping) is known; see the module docstring."""
    now = now or timezone.now()
    idle = _delete(Q(last_used__lt=now - timedelta(seconds=idle_seconds())))
    lost: list[int] = []
    if live_workers is not None:
        grace = now - timedelta(seconds=lost_grace_seconds())
        routed = Q(last_used__lt=grace) & ~Q(queue="")
        lost = _delete(routed & ~Q(worker__in=list(live_workers)))
    return PruneResult(idle=idle, lost=lost)
