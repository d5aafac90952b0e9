"""Training the quality estimator on a project's reviewer verdicts, and keeping scores current.

The examples are the project's ``Review`` rows, all given by people (an auto-accept writes no
Review row, so the estimator never learns from its own decisions): satisfactory = accepted (0),
unsatisfactory or reject = failed (1). An estimator is trained only with at least
``min_per_class`` verdicts of each class, and retrained once ``retrain_after`` verdicts arrived
since the last one; until then the review queue keeps its plain order and nothing is
auto-accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import Q

from engine.models import Masklet, MaskletRevision, Project, QualityModel, Review
from engine.quality import estimator as fitting
from engine.quality.scoring import (
    LoadedEstimator,
    current_estimator,
    do_score_revision,
    feature_vector,
)


@dataclass(frozen=True)
class QualityPolicy:
    """When an estimator may be trained and used (settings QUALITY_*)."""

    min_per_class: int = 10
    retrain_after: int = 20


@dataclass(frozen=True)
class VerdictCounts:
    accepted: int
    failed: int

    @property
    def total(self) -> int:
        return self.accepted + self.failed


def project_verdicts(project: Project) -> list[tuple[int, int]]:
    """``(revision id, failed 0/1)`` per reviewer verdict of the project, oldest first."""
    rows = Review.objects.filter(revision__masklet__video__project=project).order_by(
        "created_at", "id"
    )
    return [
        (revision_id, int(verdict != Review.Verdict.SATISFACTORY))
        for revision_id, verdict in rows.values_list("revision_id", "verdict")
    ]


def verdict_counts(project: Project) -> VerdictCounts:
    labels = [failed for _, failed in project_verdicts(project)]
    return VerdictCounts(accepted=labels.count(0), failed=labels.count(1))


def retrain_due(project: Project, policy: QualityPolicy) -> bool:
    """Enough verdicts of each class, and (after the first) enough new ones since the last."""
    counts = verdict_counts(project)
    if min(counts.accepted, counts.failed) < policy.min_per_class:
        return False
    last = QualityModel.objects.filter(project=project).order_by("-created_at", "-id").first()
    return last is None or counts.total - last.verdicts >= policy.retrain_after


def do_train_quality_model(
    project: Project, policy: QualityPolicy, *, force: bool = False
) -> QualityModel | None:
    """Fit the project's estimator on all its verdicts when :func:`retrain_due` (or ``force``,
    which still needs ``min_per_class`` of each class); None when not trained.

    Features of every reviewed revision are computed (and kept) first; then the new
    :class:`QualityModel` row is written and the masklets waiting for review are re-scored, in
    one transaction, so the queue never mixes two estimators' scores.
    """
    if not force and not retrain_due(project, policy):
        return None
    verdicts = project_verdicts(project)
    counts = VerdictCounts(
        accepted=sum(1 for _, f in verdicts if f == 0), failed=sum(1 for _, f in verdicts if f)
    )
    if min(counts.accepted, counts.failed) < policy.min_per_class:
        return None
    revisions = MaskletRevision.objects.in_bulk({rid for rid, _ in verdicts})
    rows = {rid: do_score_revision(rev, None) for rid, rev in revisions.items()}
    x = np.stack([feature_vector(rows[rid]) for rid, _ in verdicts])
    y = np.array([failed for _, failed in verdicts], dtype=np.float64)
    fitted = fitting.fit(x, y)
    with transaction.atomic():
        model = QualityModel.objects.create(
            project=project,
            params=fitted.to_json(),
            verdicts=counts.total,
            accepted=counts.accepted,
            failed=counts.failed,
            metrics=dict(fitted.metrics),
        )
        do_rescore_waiting(project, LoadedEstimator(model, fitted))
    return model


def stale_waiting_revisions(
    project: Project, loaded: LoadedEstimator | None, limit: int | None = None
) -> list[MaskletRevision]:
    """Current revisions of the project's masklets waiting for review whose quality row is
    missing or not up to date with ``loaded`` (oldest change first, at most ``limit``)."""
    stale = Q(current_revision__quality__isnull=True)
    if loaded is None:
        stale |= Q(current_revision__quality__quality_model__isnull=False)
    else:
        stale |= Q(current_revision__quality__failure_probability__isnull=True)
        stale |= ~Q(current_revision__quality__quality_model_id=loaded.row.pk)
    masklets = (
        Masklet.objects.filter(
            video__project=project,
            status=Masklet.Status.SUBMITTED,
            current_revision__isnull=False,
        )
        .filter(stale)
        .select_related("current_revision", "current_revision__masklet")
        .order_by("updated_at", "id")
    )
    if limit is not None:
        masklets = masklets[:limit]
    return [m.current_revision for m in masklets if m.current_revision is not None]


def do_rescore_waiting(
    project: Project, loaded: LoadedEstimator | None = None, *, limit: int | None = None
) -> int:
    """Score (and estimate) the revisions waiting for review whose scores are missing or
    stale (``loaded`` default: the project's current estimator); how many were scored. A
    bounded ``limit`` leaves the rest to the next sweep."""
    loaded = loaded if loaded is not None else current_estimator(project)
    revisions = stale_waiting_revisions(project, loaded, limit)
    for revision in revisions:
        do_score_revision(revision, loaded)
    return len(revisions)
