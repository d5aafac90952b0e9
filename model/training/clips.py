"""Training clips: frames and per-object ground-truth masks, stored one `.npz` per clip, and the
sampling of a training window (consecutive frames, objects visible in its first frame) as model
inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model.preprocess import frame_to_tensor


@dataclass(frozen=True)
class TrainClip:
    """A video clip with ground truth.

    frames: (T, H, W, 3) uint8 RGB, any H, W (resized to the model's image_size inside).
    masks: (O, T, H, W) bool, object o on frame t (may be empty on a frame).
    """

    frames: np.ndarray
    masks: np.ndarray

    def __post_init__(self) -> None:
        frames, masks = self.frames, self.masks
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
            raise ValueError(
                f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
            )
        if masks.dtype != np.bool_ or masks.ndim != 4:
            raise ValueError(f"masks must be bool (O, T, H, W), got {masks.dtype} {masks.shape}")
        if masks.shape[1:] != frames.shape[:3]:
            raise ValueError(
                f"masks (O, T, H, W) {masks.shape} do not match frames (T, H, W) {frames.shape[:3]}"
            )
        if frames.shape[0] < 1 or masks.shape[0] < 1:
            raise ValueError("a clip needs at least one frame and one object")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def visible(self) -> np.ndarray:
        """(O, T) bool: whether object o has any pixel on frame t."""
        return np.asarray(self.masks.reshape(*self.masks.shape[:2], -1).any(axis=2))


def save_clips(folder: Path, clips: Sequence[TrainClip]) -> None:
    """Write `clip_00000.npz`, `clip_00001.npz`, ... (compressed) into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(clips):
        np.savez_compressed(folder / f"clip_{i:05d}.npz", frames=clip.frames, masks=clip.masks)


def load_clips(folder: Path) -> list[TrainClip]:
    """All `*.npz` clips of `folder`, in file-name order."""
    paths = sorted(Path(folder).glob("*.npz"))
    if not paths:
        raise ValueError(f"no .npz clips in {folder}")
    clips = []
    for path in paths:
        with np.load(path) as data:
            clips.append(TrainClip(frames=data["frames"], masks=data["masks"].astype(bool)))
    return clips


@dataclass(frozen=True)
class ClipSample:
    """One training window as model inputs.

    images: `[T, 3, S, S]` float32, normalised. gt_masks: `[T, N, S, S]` bool (N objects).
    """

    images: torch.Tensor
    gt_masks: torch.Tensor
    start: int
    object_ids: tuple[int, ...]
    flipped: bool


def sample_window(
    clip: TrainClip, num_frames: int, max_objects: int, rng: np.random.Generator
) -> tuple[int, int, list[int]]:
    """(start, length, objects): `length` consecutive frames (all of them in a shorter clip)
    starting where at least one object is visible, and up to `max_objects` of the objects
    visible there, in id order."""
    visible = clip.visible()
    length = min(num_frames, clip.num_frames)
    starts = [s for s in range(clip.num_frames - length + 1) if visible[:, s].any()]
    if not starts:
        raise ValueError("clip has no window whose first frame shows an object")
    start = int(rng.choice(starts))
    candidates = np.flatnonzero(visible[:, start])
    count = min(max_objects, len(candidates))
    objects = sorted(int(o) for o in rng.choice(candidates, size=count, replace=False))
    return start, length, objects


def check_trainable(clips: Sequence[TrainClip]) -> None:
    """Raise ValueError unless every clip shows some object on some frame."""
    for i, clip in enumerate(clips):
        if not clip.visible().any():
            raise ValueError(f"clip {i} has no visible object on any frame")


def masks_to_model_size(masks: np.ndarray, image_size: int) -> torch.Tensor:
    """(..., H, W) bool -> `[..., S, S]` bool (bilinear resize, threshold 0.5)."""
    lead = masks.shape[:-2]
    flat = torch.from_numpy(masks.reshape(-1, 1, *masks.shape[-2:])).float()
    if flat.shape[-2:] != (image_size, image_size):
        flat = F.interpolate(flat, size=(image_size, image_size), mode="bilinear")
    return (flat >= 0.5).reshape(*lead, image_size, image_size)


def prepare_sample(
    clip: TrainClip,
    image_size: int,
    num_frames: int,
    max_objects: int,
    rng: np.random.Generator,
    hflip_prob: float = 0.0,
) -> ClipSample:
    """Sample a window (see `sample_window`), optionally flip it, and resize it to S x S."""
    start, length, objects = sample_window(clip, num_frames, max_objects, rng)
    frames = clip.frames[start : start + length]
    masks = clip.masks[objects, start : start + length]  # (N, T, H, W)
    flipped = bool(rng.random() < hflip_prob)
    if flipped:
        frames, masks = frames[:, :, ::-1], masks[..., ::-1]
    images = torch.stack([frame_to_tensor(np.ascontiguousarray(f), image_size) for f in frames])
    gt = masks_to_model_size(np.ascontiguousarray(masks.transpose(1, 0, 2, 3)), image_size)
    return ClipSample(images, gt, start, tuple(objects), flipped)
