"""Masklet revisions: immutable, merged, validated, and conflict-safe."""

from __future__ import annotations

import numpy as np
import pytest

from engine.masklets.revisions import (
    FrameMask,
    InvalidMask,
    StaleRevision,
    do_create_masklet,
    do_save_revision,
    revision_frames,
)
from engine.masks.rle import decode_rle, encode_rle
from engine.models import MaskletRevision, Video


@pytest.fixture
def video(project):
    return Video.objects.create(
        project=project, name="v.mp4", status=Video.Status.READY, width=8, height=6, frame_count=5
    )


def _mask(x0: int, x1: int) -> FrameMask:
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:4, x0:x1] = True
    return FrameMask(encode_rle(mask), source="click")


def test_object_ids_are_assigned_in_order(video, annotator):
    first = do_create_masklet(video, author=annotator, frames={0: _mask(0, 2)})
    second = do_create_masklet(video, author=annotator, frames={0: _mask(2, 4)})
    assert (first.object_id, second.object_id) == (0, 1)
    assert first.current_revision is not None
    assert first.current_revision.number == 1


def test_new_revision_merges_frames_and_keeps_history(video, annotator):
    masklet = do_create_masklet(video, author=annotator, frames={0: _mask(0, 2), 1: _mask(0, 2)})
    base = masklet.current_revision_id
    assert base is not None
    revision = do_save_revision(
        masklet, author=annotator, frames={1: _mask(4, 8)}, base_revision_id=base, edited_frames=[1]
    )
    frames = revision_frames(revision)
    assert sorted(frames) == [0, 1]
    assert frames[1].rle is not None
    assert decode_rle(frames[1].rle)[2].tolist() == [False] * 4 + [True] * 4
    assert revision.number == 2
    assert revision.edited_frames == [1]
    old = revision_frames(MaskletRevision.objects.get(pk=base))
    assert old[1].rle is not None
    assert decode_rle(old[1].rle)[2].tolist() == [True] * 2 + [False] * 6


def test_second_writer_on_a_stale_base_gets_a_conflict(video, annotator, reviewer):
    masklet = do_create_masklet(video, author=annotator, frames={0: _mask(0, 2)})
    base = masklet.current_revision_id
    do_save_revision(masklet, author=annotator, frames={0: _mask(0, 3)}, base_revision_id=base)
    with pytest.raises(StaleRevision, match="reload"):
        do_save_revision(masklet, author=reviewer, frames={0: _mask(0, 5)}, base_revision_id=base)
    assert masklet.revisions.count() == 2


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ({7: FrameMask(None)}, "outside the video's 5 frames"),
        ({-1: FrameMask(None)}, "not a non-negative integer"),
        ({0: FrameMask(encode_rle(np.zeros((4, 4), bool)))}, "mask is 4x4, the video is 8x6"),
        ({0: FrameMask(None, source="magic")}, "unknown frame source"),
    ],
)
def test_bad_frames_are_refused(video, annotator, frames, message):
    with pytest.raises(InvalidMask, match=message):
        do_create_masklet(video, author=annotator, frames=frames)
    assert not video.masklets.exists()
