"""Scoring a revision: features once (frames read from storage when there), stored as JSON."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from engine.models import RevisionQuality, frame_key
from engine.quality.scoring import do_score_revision
from engine.videos import storage
from tests._quality import FRAMES, H, W, good_masks, submit


def _store_frames(video_id: int) -> None:
    """Frames showing the square of good_masks(0): red on grey."""
    for i, mask in good_masks(0).items():
        image = np.full((H, W, 3), 110, dtype=np.uint8)
        assert mask is not None
        image[mask] = (210, 30, 30)
        out = io.BytesIO()
        Image.fromarray(image).save(out, "JPEG", quality=95)
        out.seek(0)
        storage.put_file(frame_key(video_id, i), out)


@pytest.mark.django_db
def test_frames_in_storage_give_the_edge_features(project, annotator):
    with_frames = submit(project, annotator, good_masks(0), "framed.mp4")
    _store_frames(with_frames.video_id)
    assert with_frames.current_revision is not None
    row = do_score_revision(with_frames.current_revision)
    assert row.features["edge_alignment_mean"] is not None
    assert row.features["edge_alignment_mean"] > 0.5

    without = submit(project, annotator, good_masks(0), "bare.mp4")
    assert without.current_revision is not None
    bare = do_score_revision(without.current_revision)
    assert bare.features["edge_alignment_mean"] is None  # stored as JSON null, imputed later
    assert bare.features["iou_mean"] == row.features["iou_mean"]


@pytest.mark.django_db
def test_features_are_computed_once_per_revision(project, annotator):
    masklet = submit(project, annotator, good_masks(1), "once.mp4")
    assert masklet.current_revision is not None
    first = do_score_revision(masklet.current_revision, None)
    assert len(first.frame_suspicion) == 0
    assert first.marks == []
    assert first.features["frames"] == pytest.approx(np.log1p(FRAMES))
    with CaptureQueriesContext(connection) as queries:
        again = do_score_revision(masklet.current_revision, None)
    writes = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith(("INSERT", "UPDATE"))
    ]
    assert writes == []  # the locked read only: nothing recomputed or written
    assert again.pk == first.pk
    assert RevisionQuality.objects.count() == 1
