"""What the pages and the API show of quality: a masklet's estimate, jitter and frames to check,
and a project's estimator and auto-accept state. Reads only (plus a revision's quality row,
computed once on first read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.annotation import drafts
from engine.masks.rle import decode_rle
from engine.models import Masklet, Project, QualityModel, QualitySettings
from engine.quality.auto_accept import quality_settings
from engine.quality.features import masklet_features
from engine.quality.scoring import current_estimator, do_score_revision
from engine.quality.training import VerdictCounts, verdict_counts


@dataclass(frozen=True)
class MaskletQuality:
    """``source``: "revision" (the current revision, stored) or "draft" (the unsaved draft,
    measured now, never estimated: reviewers judge revisions)."""

    masklet_id: int
    source: str
    revision_id: int | None
    jitter: float | None
    marks: list[int]
    frame_suspicion: dict[str, float]
    features: dict[str, float | None]
    failure_probability: float | None
    quality_model_id: int | None
    auto_accepted: bool = False
    auto_accepted_at: datetime | None = None
    auto_accept_threshold: float | None = None

    @property
    def acceptance_probability(self) -> float | None:
        p = self.failure_probability
        return None if p is None else round(1.0 - p, 6)


def _from_draft(masklet: Masklet) -> MaskletQuality:
    frames = drafts.draft_frames(masklet)
    masks = {i: None if f.rle is None else decode_rle(f.rle) for i, f in frames.items()}
    measured = masklet_features(masks, {i: f.stability for i, f in frames.items()})
    return MaskletQuality(
        masklet_id=masklet.pk,
        source="draft",
        revision_id=masklet.current_revision_id,
        jitter=round(measured.jitter, 6) if frames else None,
        marks=measured.marks,
        frame_suspicion={str(f): s for f, s in measured.frame_suspicion().items() if s > 0},
        features={},
        failure_probability=None,
        quality_model_id=None,
    )


def masklet_quality(masklet: Masklet, *, draft: bool = False) -> MaskletQuality:
    """The quality of the masklet's current revision (``draft``: of its editable draft)."""
    if draft and masklet.status in drafts.EDITABLE:
        return _from_draft(masklet)
    revision = masklet.current_revision
    if revision is None:
        return MaskletQuality(masklet.pk, "revision", None, None, [], {}, {}, None, None)
    row = do_score_revision(revision)
    return MaskletQuality(
        masklet_id=masklet.pk,
        source="revision",
        revision_id=revision.pk,
        jitter=row.jitter,
        marks=list(row.marks),
        frame_suspicion=dict(row.frame_suspicion),
        features=dict(row.features),
        failure_probability=row.failure_probability,
        quality_model_id=row.quality_model_id,
        auto_accepted=row.auto_accepted,
        auto_accepted_at=row.auto_accepted_at,
        auto_accept_threshold=row.auto_accept_threshold,
    )


@dataclass(frozen=True)
class ProjectQuality:
    settings: QualitySettings
    estimator: QualityModel | None
    verdicts: VerdictCounts
    auto_accepted: int

    def as_json(self) -> dict[str, Any]:
        model = self.estimator
        return {
            "project": self.settings.project_id,
            "auto_accept": self.settings.auto_accept,
            "auto_accept_threshold": self.settings.auto_accept_threshold,
            "trained": model is not None,
            "estimator": None
            if model is None
            else {
                "id": model.pk,
                "created_at": model.created_at,
                "verdicts": model.verdicts,
                "accepted": model.accepted,
                "failed": model.failed,
                "metrics": model.metrics,
            },
            "verdicts": {"accepted": self.verdicts.accepted, "failed": self.verdicts.failed},
            "auto_accepted_masklets": self.auto_accepted,
        }


def project_quality(project: Project) -> ProjectQuality:
    loaded = current_estimator(project)
    return ProjectQuality(
        settings=quality_settings(project),
        estimator=loaded.row if loaded else None,
        verdicts=verdict_counts(project),
        auto_accepted=Masklet.objects.filter(
            video__project=project, current_revision__quality__auto_accepted=True
        ).count(),
    )
