"""Training clips: storage and window sampling (model/training/clips.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.training.clips import TrainClip, load_clips, prepare_sample, sample_window, save_clips
from model.training.synthetic import moving_discs_clips


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    clips = moving_discs_clips(2, num_frames=3, size=40)
    save_clips(tmp_path, clips)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_00000.npz", "clip_00001.npz"]
    loaded = load_clips(tmp_path)
    for a, b in zip(clips, loaded):
        assert np.array_equal(a.frames, b.frames)
        assert np.array_equal(a.masks, b.masks)
        assert b.masks.dtype == np.bool_


def test_load_clips_needs_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no .npz"):
        load_clips(tmp_path)


def test_clip_shapes_are_checked() -> None:
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="do not match"):
        TrainClip(frames, np.zeros((1, 2, 8, 9), bool))
    with pytest.raises(ValueError, match="bool"):
        TrainClip(frames, np.zeros((1, 2, 8, 8), np.uint8))


def test_window_starts_where_its_objects_are_visible() -> None:
    masks = np.zeros((3, 6, 4, 4), bool)
    masks[0, 3:, 0, 0] = True  # object 0 appears on frame 3
    masks[1, 4, 1, 1] = True  # object 1 only on frame 4
    masks[2, 0, 2, 2] = True  # object 2 only on frame 0
    clip = TrainClip(np.zeros((6, 4, 4, 3), np.uint8), masks)
    seen = set()
    for seed in range(40):
        start, length, objects = sample_window(clip, 3, 2, np.random.default_rng(seed))
        assert length == 3
        assert start in (0, 3)
        assert all(masks[o, start].any() for o in objects)
        seen.add((start, tuple(objects)))
    assert seen == {(0, (2,)), (3, (0,))}


def test_max_objects_and_short_clips() -> None:
    clip = moving_discs_clips(1, num_frames=2, size=32, num_objects=4)[0]
    start, length, objects = sample_window(clip, 8, 3, np.random.default_rng(0))
    assert (start, length) == (0, 2)
    assert len(objects) == 3
    assert objects == sorted(objects)


def test_prepare_sample_resizes_and_flips() -> None:
    clip = moving_discs_clips(1, num_frames=3, size=64, num_objects=1)[0]
    flat = prepare_sample(clip, 128, 3, 3, np.random.default_rng(0), hflip_prob=0.0)
    flip = prepare_sample(clip, 128, 3, 3, np.random.default_rng(0), hflip_prob=1.0)
    assert flat.images.shape == (3, 3, 128, 128)
    assert flat.gt_masks.shape == (3, 1, 128, 128)
    assert flip.flipped
    assert not flat.flipped
    assert np.array_equal(flip.gt_masks.numpy(), flat.gt_masks.flip(-1).numpy())
    # the resized mask covers 4x the pixels of the original
    ratio = flat.gt_masks[0, 0].sum().item() / clip.masks[0, 0].sum()
    assert 3.6 < ratio < 4.4
