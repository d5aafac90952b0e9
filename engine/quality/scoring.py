"""Quality rows of masklet revisions: features once per revision, estimates per estimator.

:func:`do_score_revision` computes a revision's features (decoding its masks) the first time
and only re-applies the estimator afterwards (a revision is immutable, so its features never
change). :func:`current_estimator` is the project's newest :class:`QualityModel`, or None
while no estimator is trained, and then every ``failure_probability`` stays None.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import numpy as np
from django.db import IntegrityError, transaction
from PIL import Image

from engine.masks.rle import decode_rle
from engine.models import (
    MaskletRevision,
    Project,
    QualityModel,
    RevisionQuality,
    frame_key,
)
from engine.quality.estimator import QualityEstimator
from engine.quality.features import FEATURE_NAMES, MaskletFeatures, masklet_features
from engine.videos import storage

logger = logging.getLogger(__name__)

#: Frames decoded per revision for the edge-alignment features (evenly spread over the
#: present frames): enough to see a drift, bounded for long videos.
MAX_IMAGE_FRAMES = 32


class _Current(Enum):
    ESTIMATOR = "current"


#: "Use the project's current estimator" (the default of :func:`do_score_revision`).
CURRENT = _Current.ESTIMATOR


@dataclass(frozen=True)
class LoadedEstimator:
    row: QualityModel
    estimator: QualityEstimator


def current_estimator(project: Project | int) -> LoadedEstimator | None:
    """The project's newest trained estimator; None while there is none (or it cannot be
    read, e.g. trained on other features: it must be retrained, never half-used)."""
    project_id = project.pk if isinstance(project, Project) else project
    row = QualityModel.objects.filter(project_id=project_id).order_by("-created_at", "-id").first()
    if row is None:
        return None
    try:
        return LoadedEstimator(row, QualityEstimator.from_json(row.params))
    except (ValueError, KeyError, TypeError):
        return None


def frame_images(video_id: int, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """(H, W, 3) uint8 RGB of the decoded frames in storage; missing ones are left out (a
    video imported without frames still gets its mask features)."""
    images: dict[int, np.ndarray] = {}
    for index in indices:
        try:
            data = storage.read_bytes(frame_key(video_id, index))
        except (OSError, ValueError) as exc:
            logger.debug("no frame %s of video %s for quality features: %s", index, video_id, exc)
            continue
        with Image.open(io.BytesIO(data)) as img:
            images[index] = np.asarray(img.convert("RGB"))
    return images


def _spread(indices: list[int], count: int) -> list[int]:
    if len(indices) <= count:
        return indices
    picks = np.linspace(0, len(indices) - 1, count).round().astype(int)
    return [indices[k] for k in sorted(set(picks.tolist()))]


def revision_features(revision: MaskletRevision) -> MaskletFeatures:
    """Decode the revision's masks (and up to MAX_IMAGE_FRAMES of its frames) and measure them
    (see engine.quality.features)."""
    masks: dict[int, np.ndarray | None] = {}
    stability: dict[int, float | None] = {}
    for key, frame in revision.frames.items():
        rle = frame.get("rle")
        masks[int(key)] = None if rle is None else decode_rle(rle)
        stability[int(key)] = frame.get("stability")
    present = sorted(i for i, m in masks.items() if m is not None)
    video_id = revision.masklet.video_id
    images = {}
    for index, image in frame_images(video_id, _spread(present, MAX_IMAGE_FRAMES)).items():
        mask = masks[index]
        if mask is not None and image.shape[:2] == mask.shape:  # frames of another size: skip
            images[index] = image
    return masklet_features(masks, stability, images)


def _json_features(features: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if math.isnan(v) else round(float(v), 6)) for k, v in features.items()}


def feature_vector(row: RevisionQuality) -> np.ndarray:
    """(F,) float64 in FEATURE_NAMES order from a stored row (nan where not measurable)."""
    values = [row.features.get(name) for name in FEATURE_NAMES]
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _estimate(row: RevisionQuality, loaded: LoadedEstimator | None) -> list[str]:
    """Set the row's failure probability from ``loaded``; the changed field names."""
    if loaded is None:
        if row.quality_model_id is None and row.failure_probability is None:
            return []
        row.failure_probability, row.quality_model = None, None
    else:
        if row.quality_model_id == loaded.row.pk and row.failure_probability is not None:
            return []
        p = float(loaded.estimator.failure_probability(feature_vector(row)[None, :])[0])
        row.failure_probability, row.quality_model = round(p, 6), loaded.row
    return ["failure_probability", "quality_model"]


@transaction.atomic
def do_score_revision(
    revision: MaskletRevision, estimator: LoadedEstimator | None | _Current = CURRENT
) -> RevisionQuality:
    """The revision's quality row, created with its features the first time, its estimate
    brought up to date with ``estimator`` (default: the project's current estimator).

    Locks the revision's quality row when it exists, so two scorers never both write it. Two
    first scorers at once (nothing to lock yet) both measure; the first insert wins and the
    other, refused by the one-row-per-revision constraint, locks and uses the winner's row.
    """
    loaded = (
        current_estimator(revision.masklet.video.project_id) if estimator is CURRENT else estimator
    )
    assert not isinstance(loaded, _Current)
    row = RevisionQuality.objects.select_for_update().filter(revision=revision).first()
    if row is None:
        measured = revision_features(revision)
        row = RevisionQuality(
            revision=revision,
            features=_json_features(measured.features),
            frame_suspicion={str(f): s for f, s in measured.frame_suspicion().items() if s > 0.0},
            marks=measured.marks,
            jitter=round(measured.jitter, 6),
        )
        _estimate(row, loaded)
        try:
            with transaction.atomic():  # a savepoint: the insert may lose to a concurrent one
                row.save()
            return row
        except IntegrityError:
            row = RevisionQuality.objects.select_for_update().get(revision=revision)
    changed = _estimate(row, loaded)
    if changed:
        row.save(update_fields=[*changed, "computed_at"])
    return row
