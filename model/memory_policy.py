"""Which tracked frames may serve as spatial memory: a training-free memory-selection policy.

SAM 2 conditions frame t on its prompted frames and the `num_maskmem - 1` frames just before t
(in tracking order), whatever their quality, so one occluded or badly segmented frame stays in
memory for six frames and can derail tracking. SAMURAI, SAM2Long and DAM4SAM (described in
their papers; no code of theirs is used here) gain on occlusion-heavy videos by letting only
confident frames into memory. `MemoryPolicy(name="reliable")` does that with the model's own
estimates: a tracked frame is *reliable* when its object score logit is above `min_object_score`
(the object is judged present) and its predicted mask IoU is at least `min_iou`. The memory
slots of frame t then hold the nearest reliable frames before t (at most `max_distance` frames
back) instead of the nearest frames; slots left over stay empty. Object pointers of frames
further back than the spatial slots are unchanged.

`MemoryPolicy()` ("all") is the official behaviour and the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

POLICIES = ("all", "reliable")


@dataclass(frozen=True)
class MemoryPolicy:
    """Memory selection of a video session.

    Attributes:
        name: "all" (official: the nearest frames) or "reliable" (the nearest confident ones).
        min_iou: "reliable": lowest predicted IoU of the tracked mask.
        min_object_score: "reliable": lowest object-score logit (0 = the model's own
            present/absent boundary).
        max_distance: "reliable": how many frames back (in tracking order) are searched.
    """

    name: str = "all"
    min_iou: float = 0.7
    min_object_score: float = 0.0
    max_distance: int = 32

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(
                f"memory policy must be one of {', '.join(POLICIES)}, not {self.name!r}"
            )
        if not 0.0 <= self.min_iou <= 1.0:
            raise ValueError("min_iou must lie in [0, 1]")
        if self.max_distance < 1:
            raise ValueError("max_distance must be >= 1")

    @property
    def selective(self) -> bool:
        return self.name != "all"

    def is_reliable(self, iou: float, object_score: float) -> bool:
        """Whether a tracked frame with this predicted IoU and object-score logit may be memory."""
        return object_score > self.min_object_score and iou >= self.min_iou


def select_memory_frames(
    frame_idx: int,
    reverse: bool,
    slots: int,
    reliable: dict[int, bool],
    usable: Callable[[int], bool],
    max_distance: int,
) -> list[int]:
    """The nearest reliable frames before `frame_idx` in tracking order, nearest first.

    Args:
        reliable: frame -> whether its tracked output passed the policy.
        usable: whether a frame's stored output can serve (in the bank, not a prompted frame).
        slots: at most this many frames.
    """
    step = 1 if reverse else -1
    chosen: list[int] = []
    for distance in range(1, max_distance + 1):
        t = frame_idx + step * distance
        if t < 0:
            break
        if reliable.get(t) and usable(t):
            chosen.append(t)
            if len(chosen) == slots:
                break
    return chosen
