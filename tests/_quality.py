"""Building blocks of the quality tests: good and bad hand-made masklets, reviewer verdicts."""

from __future__ import annotations

import numpy as np

from engine.models import Masklet, MaskletRevision, Review
from engine.review import verdicts
from tests._masklets import ready_video, square, submitted_masklet

H, W, FRAMES = 48, 64, 12


def good_masks(shift: int = 0) -> dict[int, np.ndarray | None]:
    """A square gliding one pixel per frame: smooth, never lost."""
    return {i: square(H, W, 10 + shift % 5, 5 + i, 14) for i in range(FRAMES)}


def bad_masks(shift: int = 0) -> dict[int, np.ndarray | None]:
    """The same square, lost on two frames and jumping about (drift and jitter)."""
    rng = np.random.default_rng(shift)
    masks: dict[int, np.ndarray | None] = {}
    for i in range(FRAMES):
        dy, dx = (int(v) for v in rng.integers(-6, 7, size=2))
        size = 14 + int(rng.integers(-5, 6))
        masks[i] = square(H, W, 15 + dy, 20 + dx, size)
    masks[4] = None
    masks[8] = None
    return masks


def video_for(project, name: str = "q.mp4"):
    return ready_video(project, height=H, width=W, frame_count=FRAMES, name=name)


def submit(project, author, masks, name: str) -> Masklet:
    return submitted_masklet(video_for(project, name), author, masks)


def review(masklet: Masklet, reviewer, verdict: str) -> Review:
    masklet.refresh_from_db()
    assert masklet.current_revision_id is not None
    revision = MaskletRevision.objects.get(pk=masklet.current_revision_id)
    flagged = [0] if verdict != Review.Verdict.SATISFACTORY else []
    return verdicts.do_review(revision, reviewer, verdict, flagged).review


def reviewed_examples(project, author, reviewer, per_class: int) -> None:
    """``per_class`` good masklets judged satisfactory and as many bad ones unsatisfactory."""
    for k in range(per_class):
        good = submit(project, author, good_masks(k), f"good-{k}.mp4")
        review(good, reviewer, Review.Verdict.SATISFACTORY)
        bad = submit(project, author, bad_masks(k), f"bad-{k}.mp4")
        review(bad, reviewer, Review.Verdict.UNSATISFACTORY)
