"""Procedural training clips: textured discs moving over noise (tests, benchmarks, demos)."""

from __future__ import annotations

import numpy as np

from model.training.clips import TrainClip


def moving_discs_clip(
    rng: np.random.Generator, num_frames: int = 4, size: int = 128, num_objects: int = 2
) -> TrainClip:
    """A clip of `num_frames` (size x size) frames: dark noise, `num_objects` striped discs of
    distinct colours moving in straight lines (later discs drawn on top, masks exclusive)."""
    yy, xx = np.mgrid[0:size, 0:size]
    frames = rng.integers(0, 60, (num_frames, size, size, 3)).astype(np.uint8)
    masks = np.zeros((num_objects, num_frames, size, size), dtype=bool)
    for o in range(num_objects):
        radius = rng.uniform(0.1, 0.2) * size
        centre = rng.uniform(radius, size - radius, 2)
        velocity = rng.uniform(-0.04, 0.04, 2) * size
        colour = rng.integers(120, 256, 3)
        stripe = rng.integers(3, 8)
        for t in range(num_frames):
            cy, cx = np.clip(centre + t * velocity, radius, size - radius)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            texture = ((xx + yy) // stripe) % 2 == 0
            pixels = np.where(texture[..., None], colour, colour // 2).astype(np.uint8)
            frames[t][disc] = pixels[disc]
            masks[:o, t] &= ~disc
            masks[o, t] = disc
    return TrainClip(frames=frames, masks=masks)


def moving_discs_clips(
    count: int, seed: int = 0, num_frames: int = 4, size: int = 128, num_objects: int = 2
) -> list[TrainClip]:
    """`count` clips of `moving_discs_clip`, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return [moving_discs_clip(rng, num_frames, size, num_objects) for _ in range(count)]
