"""Procedural videos: deterministic, exact masks, and the events the spec asks for."""

from __future__ import annotations

import numpy as np
import pytest

from engine.simulation.procedural import ProceduralSpec, ProceduralVideo, make_video, make_videos
from engine.simulation.shapes import SHAPE_KINDS

SEEDS = (0, 1, 2)


def _has_gap(present: np.ndarray) -> bool:
    idx = np.flatnonzero(present)
    return idx.size > 0 and not present[idx[0] : idx[-1] + 1].all()


def _areas(masks: np.ndarray) -> np.ndarray:
    return masks.reshape(masks.shape[0], masks.shape[1], -1).sum(-1)


def test_shapes_and_types() -> None:
    spec = ProceduralSpec(num_frames=10, height=64, width=96, num_objects=2)
    video = make_video(3, spec)
    assert video.frames.shape == (10, 64, 96, 3)
    assert video.frames.dtype == np.uint8
    assert video.masks.shape == (2, 10, 64, 96)
    assert video.masks.dtype == bool
    assert len(video.labels) == 2
    assert set(video.labels) <= set(SHAPE_KINDS)
    assert video.seed == 3
    assert video.spec == spec


def test_same_seed_same_bytes_other_seed_differs() -> None:
    a, b, c = make_video(7), make_video(7), make_video(8)
    assert a.frames.tobytes() == b.frames.tobytes()
    assert a.masks.tobytes() == b.masks.tobytes()
    assert a.labels == b.labels
    assert a.frames.tobytes() != c.frames.tobytes()
    assert a.masks.tobytes() != c.masks.tobytes()


def test_make_videos_uses_consecutive_seeds() -> None:
    spec = ProceduralSpec(num_frames=8, num_objects=1, occlusion=False)
    videos = make_videos(20, 2, spec)
    assert [v.seed for v in videos] == [20, 21]
    assert videos[1].frames.tobytes() == make_video(21, spec).frames.tobytes()


def test_masks_are_disjoint_and_the_visible_part_of_each_silhouette() -> None:
    video = make_video(4)
    assert video.masks.sum(0).max() == 1
    order = np.argsort(video.depth)  # back to front
    for rank, o in enumerate(order):
        in_front = video.amodal_masks[order[rank + 1 :]].any(0)
        np.testing.assert_array_equal(video.masks[o], video.amodal_masks[o] & ~in_front)


def test_masks_are_exactly_the_object_pixels() -> None:
    """With a still camera and no noise every background pixel keeps its colour; every masked
    pixel is painted by its object (differs from the background there)."""
    spec = ProceduralSpec(camera_motion=False, noise=0.0)
    video = make_video(5, spec)
    covered = np.any(video.masks, axis=0)  # (T, H, W)
    frames = video.frames.astype(np.int16)
    background = np.full(frames.shape[1:], -1, dtype=np.int16)
    for t in range(frames.shape[0]):
        free = ~covered[t]
        seen = background[..., 0] >= 0
        both = free & seen
        np.testing.assert_array_equal(frames[t][both], background[both])
        background[free & ~seen] = frames[t][free & ~seen]
    known = (background[..., 0] >= 0)[None] & covered
    differs = np.abs(frames - background[None]).sum(-1) > 0
    assert differs[known].mean() > 0.95


@pytest.mark.parametrize("seed", SEEDS)
def test_reappear_makes_an_object_leave_and_come_back(seed: int) -> None:
    video = make_video(seed, ProceduralSpec(reappear=True))
    present = _areas(video.masks) > 0
    assert any(_has_gap(present[o]) for o in range(present.shape[0]))


@pytest.mark.parametrize("seed", SEEDS)
def test_without_reappear_every_object_stays_visible(seed: int) -> None:
    video = make_video(seed, ProceduralSpec(reappear=False))
    present = _areas(video.masks) > 0
    assert present.all()
    assert not any(_has_gap(present[o]) for o in range(present.shape[0]))


@pytest.mark.parametrize("seed", SEEDS)
def test_occlusion_shrinks_a_mask_while_the_object_stays(seed: int) -> None:
    video = make_video(seed, ProceduralSpec(reappear=False))
    visible, whole = _areas(video.masks), _areas(video.amodal_masks)
    # the silhouette is in the frame but objects in front take pixels away from the mask
    hidden = (whole > 0) & (visible > 0) & (visible <= 0.9 * whole)
    assert hidden.any()
    o, t = np.argwhere(hidden)[0]
    lost = video.amodal_masks[o, t] & ~video.masks[o, t]
    front = [k for k in range(len(video.depth)) if video.depth[k] > video.depth[o]]
    assert lost.any()
    assert (lost <= video.masks[front, t].any(0)).all()


def test_no_occlusion_keeps_silhouettes_apart() -> None:
    video = make_video(1, ProceduralSpec(occlusion=False))
    assert video.amodal_masks.sum(0).max() == 1
    np.testing.assert_array_equal(video.masks, video.amodal_masks)


def test_camera_motion_moves_the_background() -> None:
    def background_change(spec: ProceduralSpec) -> float:
        video = make_video(2, spec)
        free = ~video.masks[:, 0].any(0) & ~video.masks[:, -1].any(0)
        first, last = video.frames[0].astype(int), video.frames[-1].astype(int)
        return float(np.abs(first - last)[free].mean())

    assert background_change(ProceduralSpec(camera_motion=False, noise=0.0)) == 0.0
    assert background_change(ProceduralSpec(camera_motion=True, noise=0.0)) > 2.0


def test_objects_are_not_flat_colours() -> None:
    video = make_video(6, ProceduralSpec(noise=0.0))
    for o in range(video.masks.shape[0]):
        pixels = video.frames[0][video.masks[o, 0]].astype(float)
        assert pixels.std(0).max() > 5.0


def test_occlusion_heavy_hides_objects_completely_and_brings_them_back() -> None:
    spec = ProceduralSpec.occlusion_heavy()
    assert spec.num_frames >= 48
    assert spec.full_occlusions > 0
    video: ProceduralVideo = make_video(0, spec)
    visible, whole = _areas(video.masks), _areas(video.amodal_masks)
    assert ((whole > 0) & (visible == 0)).any()  # in the frame, entirely behind another object
    gaps = sum(_has_gap(visible[o] > 0) for o in range(visible.shape[0]))
    assert gaps >= 2


@pytest.mark.parametrize(
    "overrides",
    [{"num_frames": 1}, {"num_objects": 0}, {"height": 16}, {"min_size": 0.5}, {"speed": 0}],
)
def test_bad_specs_are_refused(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ProceduralSpec(**overrides)  # type: ignore[arg-type]
