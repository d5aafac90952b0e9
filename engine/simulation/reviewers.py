"""Simulated reviewers: verdicts on submitted masklets against the ground truth, through the
engine's review functions (:func:`engine.review.queue.do_take_next_review`,
:func:`engine.review.verdicts.do_review`).

A reviewer takes the next masklet of the project's queue, compares its current revision with the
object's ground truth frame by frame (J and F, DESIGN.md section 7; frames the revision lacks are
empty) and decides as the paper's verifiers do (P1 section 5.1):

- *satisfactory* when the masklet's J&F over the video is at least ``accept_jf``;
- *unsatisfactory* otherwise, flagging the worst frames (J below ``flag_j``, worst first, at
  most ``max_flags``): the engine sends the masklet back to its annotator as a fix;
- *reject* when the object is not well defined (too small to trace anywhere in the video) or
  the masklet already came back ``max_sendbacks`` times without reaching the threshold.

Each review costs the timing model's viewing time for the video's frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.masklets.revisions import revision_frames
from engine.masks.rle import decode_rle
from engine.metrics.scores import evaluate_frame
from engine.models import Masklet, Project, Review, User, Video
from engine.review.queue import do_take_next_review
from engine.review.verdicts import do_review
from engine.simulation.timing import DEFAULT_TIMING, TimingModel

Truth = Callable[[Video], np.ndarray]


@dataclass(frozen=True)
class ReviewerConfig:
    accept_jf: float = 0.8
    flag_j: float = 0.75
    max_flags: int = 8
    #: A GT object never larger than this many pixels is "not well defined": rejected.
    min_object_pixels: int = 12
    max_sendbacks: int = 2


@dataclass(frozen=True)
class Judgement:
    verdict: str
    jf: float
    flagged: tuple[int, ...]


@dataclass(frozen=True)
class ReviewRecord:
    masklet_id: int
    revision_id: int
    verdict: str
    jf: float
    flagged: tuple[int, ...]
    seconds: float


def frame_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F of (T, H, W) bool ``pred`` against ``gt``: two (T,) float arrays."""
    scores = [evaluate_frame(p, g) for p, g in zip(pred, gt, strict=True)]
    return np.array([s.j for s in scores]), np.array([s.f for s in scores])


def masklet_jf(pred: np.ndarray, gt: np.ndarray) -> float:
    """J&F of one masklet over every frame of its video (empty vs empty scores 1)."""
    j, f = frame_scores(pred, gt)
    return float((j.mean() + f.mean()) / 2)


def judge(
    pred: np.ndarray, gt: np.ndarray, sendbacks: int, config: ReviewerConfig | None = None
) -> Judgement:
    """The verdict on (T, H, W) ``pred`` for the GT object ``gt`` (see the module docstring)."""
    config = config or ReviewerConfig()
    j, f = frame_scores(pred, gt)
    jf = float((j.mean() + f.mean()) / 2)
    largest = int(gt.reshape(gt.shape[0], -1).sum(axis=1).max()) if gt.size else 0
    if largest < config.min_object_pixels:
        return Judgement(Review.Verdict.REJECT, jf, ())
    if jf >= config.accept_jf:
        return Judgement(Review.Verdict.SATISFACTORY, jf, ())
    if sendbacks >= config.max_sendbacks:
        return Judgement(Review.Verdict.REJECT, jf, ())
    worst = [int(t) for t in np.argsort(j, kind="stable") if j[t] < config.flag_j]
    if not worst:  # J is fine everywhere but boundaries are not: flag the worst F frames
        worst = [int(t) for t in np.argsort(f, kind="stable")]
    return Judgement(Review.Verdict.UNSATISFACTORY, jf, tuple(sorted(worst[: config.max_flags])))


def revision_masks(masklet: Masklet) -> np.ndarray:
    """The masklet's current revision as (T, H, W) bool (frames it lacks are empty)."""
    video = masklet.video
    masks = np.zeros((video.frame_count, video.height or 0, video.width or 0), dtype=bool)
    assert masklet.current_revision is not None
    for index, frame in revision_frames(masklet.current_revision).items():
        if frame.rle is not None and 0 <= index < video.frame_count:
            masks[index] = decode_rle(frame.rle)
    return masks


class SimulatedReviewer:
    """A reviewer of ``project``; ``gt_index`` maps a masklet to its GT object's index."""

    def __init__(
        self,
        user: User,
        project: Project,
        truth: Truth,
        gt_index: Callable[[Masklet], int],
        config: ReviewerConfig | None = None,
        timing: TimingModel = DEFAULT_TIMING,
    ) -> None:
        self.user = user
        self.project = project
        self.truth = truth
        self.gt_index = gt_index
        self.config = config or ReviewerConfig()
        self.timing = timing

    def review_next(self) -> ReviewRecord | None:
        """Review the next masklet of the queue; None when the queue is empty."""
        masklet = do_take_next_review(self.user, self.project)
        if masklet is None:
            return None
        masklet = Masklet.objects.select_related("video", "current_revision").get(pk=masklet.pk)
        revision = masklet.current_revision
        assert revision is not None
        gt = self.truth(masklet.video)[self.gt_index(masklet)]
        sendbacks = Review.objects.filter(
            revision__masklet=masklet, verdict=Review.Verdict.UNSATISFACTORY
        ).count()
        verdict = judge(revision_masks(masklet), gt, sendbacks, self.config)
        do_review(
            revision,
            self.user,
            verdict.verdict,
            flagged_frames=verdict.flagged,
            comment=f"simulated review: J&F {verdict.jf:.3f}",
        )
        return ReviewRecord(
            masklet_id=masklet.pk,
            revision_id=revision.pk,
            verdict=verdict.verdict,
            jf=verdict.jf,
            flagged=verdict.flagged,
            seconds=self.timing.review_seconds(masklet.video.frame_count),
        )

    def review_all(self) -> list[ReviewRecord]:
        """Review until the queue is empty."""
        records = []
        while (record := self.review_next()) is not None:
            records.append(record)
        return records
