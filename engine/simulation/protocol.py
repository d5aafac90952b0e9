"""The model evaluation protocol: simulated clicks, propagation, J&F (DESIGN.md section 7).

Per object, on the first frame where it is visible (its *prompt frame*):

* **clicks**: the simulated annotator (``engine.simulation.clicks``) clicks at the object's centre,
  then at the centre of the largest error of the current mask, through the model's video session.
  For each ``k`` in ``click_counts`` the state after ``k`` clicks is propagated forward through
  the clip and scored: ``jf_after_clicks[k]``. ``clicks_to_target`` counts the clicks on the
  prompt frame until its IoU reaches ``iou_target`` (``max_clicks + 1`` if never).
* **mask**: the ground-truth mask of the prompt frame is the prompt, then propagation:
  ``jf_from_mask`` (the semi-supervised VOS setting).

J&F uses ``engine.metrics.scores`` on every frame after the prompt frame (the prompted frame is
skipped, as SA-V's evaluator skips the first annotated frame; frames where the object is hidden
count, empty against empty scores 1). Per video: means over its objects; per model: means over
videos, so two models on the same videos can be compared video by video
(:func:`paired_difference`).

Sessions: the objects of a video with the same prompt frame share one session, so frame features
are computed once. The clicks are simulated first; then the session is reset and every (prompt
state, object) pair is added as an object of its own: the recorded first k clicks replayed for
each k, and the GT mask. One propagation then tracks them all, batched. (Clicking on after a
propagation would not do: prompting a frame that was already tracked is a correction, not a first
prompt.) Objects are independent in a session (per-object memories), so each pair gets the result
it gets alone, up to float rounding of the batched kernels (``benchmarks/bench_protocol.py``
prints the largest difference).

Pure numpy/torch + ``model``: no Django, usable from training and benchmarks.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.metrics.scores import evaluate_masklet
from engine.simulation.clicks import Click, first_click, mask_iou, next_click
from model.frames import ArrayFrameSource
from model.sam2_base import Sam2Model
from model.video_predictor import FrameResult, VideoPredictor, VideoSession


@dataclass(frozen=True)
class EvalConfig:
    """Protocol settings.

    Attributes:
        click_counts: propagate after this many clicks and score each (``jf_<k>``).
        iou_target: a prompt frame is done at this IoU (``clicks_to_<target * 100>``).
        max_clicks: click budget for ``clicks_to_target``.
        apply_postprocessing: model settings of the interactive predictor (True) or of the
            official VOS evaluation (False, the default: no hole filling, no dynamic multimask).
        skip_last_frame: also skip each clip's last frame (SA-V's evaluator skips first and last).
        feature_cache_size: frames whose image features a session keeps (the clip is
            propagated ``len(click_counts) + 1`` times; caching it whole avoids recomputing).
        dtype: "float32" or "bfloat16" (autocast) for the model's sessions.
        max_batch_objects: how many (prompt state, object) pairs one propagation tracks
            together (memory grows with it).
    """

    click_counts: tuple[int, ...] = (1, 3, 5)
    iou_target: float = 0.75
    max_clicks: int = 10
    apply_postprocessing: bool = False
    skip_last_frame: bool = False
    feature_cache_size: int = 64
    dtype: str = "float32"
    max_batch_objects: int = 32

    def __post_init__(self) -> None:
        if not self.click_counts or any(k < 1 for k in self.click_counts):
            raise ValueError(f"click_counts must be positive, got {self.click_counts}")
        if not 0 < self.iou_target <= 1:
            raise ValueError(f"iou_target must be in (0, 1], got {self.iou_target}")
        if min(self.max_clicks, self.feature_cache_size, self.max_batch_objects) < 1:
            raise ValueError("max_clicks, feature_cache_size and max_batch_objects must be >= 1")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")

    @property
    def clicks_key(self) -> str:
        """Summary key of ``clicks_to_target``: ``clicks_to_075`` for 0.75."""
        return f"clicks_to_{round(self.iou_target * 100):03d}"


@dataclass
class VideoScores:
    """One video: means over its evaluated objects."""

    jf_after_clicks: dict[int, float]
    clicks_to_target: float
    jf_from_mask: float
    num_objects: int = 0
    video_index: int = -1


@dataclass
class ModelScores:
    """A model on a set of videos: means over videos.

    ``per_video`` follows the input order; a video without any object to evaluate is left out
    (``VideoScores.video_index`` tells which input each entry is). Which videos are left out
    depends on the ground truth only, so two models scored on the same videos stay paired.
    """

    per_video: list[VideoScores]
    jf_after_clicks: dict[int, float]
    clicks_to_target: float
    jf_from_mask: float
    iou_target: float = 0.75

    def summary(self) -> dict[str, float]:
        """Flat JSON-safe dict: ``jf_1``, ``jf_3``, ``jf_5``, ``clicks_to_075``, ``jf_mask``."""
        out = {f"jf_{k}": float(v) for k, v in sorted(self.jf_after_clicks.items())}
        out[EvalConfig(iou_target=self.iou_target).clicks_key] = float(self.clicks_to_target)
        out["jf_mask"] = float(self.jf_from_mask)
        return out


@dataclass
class _ObjectResult:
    jf_after_clicks: dict[int, float] = field(default_factory=dict)
    clicks_to_target: float = 0.0
    jf_from_mask: float = 0.0


def evaluate_model(
    model: Sam2Model,
    videos: Sequence[tuple[np.ndarray, np.ndarray]],
    config: EvalConfig = EvalConfig(),
    *,
    device: str = "cpu",
    on_progress: Callable[[float], None] | None = None,
) -> ModelScores:
    """Score ``model`` on ``videos`` with the simulated interactive protocol.

    Args:
        model: a SAM 2 model; its training mode, post-processing flags and device are restored
            afterwards (it is moved to ``device`` for the evaluation if it is elsewhere).
        videos: ``(frames, masks)`` pairs: frames ``(T, H, W, 3)`` uint8 RGB, masks
            ``(O, T, H, W)`` bool ground truth. Objects never visible before the last scored
            frame are left out, and videos with no other object.
        on_progress: called with the finished fraction (0..1] after each video.

    Raises:
        ValueError: no videos, malformed arrays, or no object to evaluate in any video.
    """
    if not videos:
        raise ValueError("no videos to evaluate")
    for index, (frames, masks) in enumerate(videos):
        _check_video(index, frames, masks)
    per_video = []
    with _evaluation_mode(model, device, config) as predictor:
        for index, (frames, masks) in enumerate(videos):
            scores = _evaluate_video(predictor, index, frames, masks, config)
            if scores is not None:
                per_video.append(scores)
            if on_progress is not None:
                on_progress((index + 1) / len(videos))
    if not per_video:
        raise ValueError("no object to evaluate: none is visible before the last scored frame")
    return ModelScores(
        per_video=per_video,
        jf_after_clicks={
            k: float(np.mean([v.jf_after_clicks[k] for v in per_video]))
            for k in config.click_counts
        },
        clicks_to_target=float(np.mean([v.clicks_to_target for v in per_video])),
        jf_from_mask=float(np.mean([v.jf_from_mask for v in per_video])),
        iou_target=config.iou_target,
    )


def paired_difference(
    candidate: ModelScores, baseline: ModelScores, metric: str = "jf_3"
) -> tuple[float, float]:
    """Mean per-video difference ``candidate - baseline`` of ``metric`` and its standard error.

    Both must score the same videos in the same order. ``metric`` is a ``summary()`` key
    (``jf_<k>``, ``jf_mask``, ``clicks_to_<target>``; fewer clicks is better). With one video
    the standard error is infinite (no evidence of a difference).
    """
    if len(candidate.per_video) != len(baseline.per_video):
        raise ValueError(
            f"different video counts: {len(candidate.per_video)} vs {len(baseline.per_video)}"
        )
    diffs = np.array(
        [
            video_metric(c, metric) - video_metric(b, metric)
            for c, b in zip(candidate.per_video, baseline.per_video)
        ]
    )
    if diffs.size < 2:
        return float(diffs.mean()), math.inf
    return float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(diffs.size))


def video_metric(scores: VideoScores, metric: str) -> float:
    """One ``summary()``-style metric of one video."""
    if metric == "jf_mask":
        return scores.jf_from_mask
    if metric.startswith("clicks_to_"):
        return scores.clicks_to_target
    if metric.startswith("jf_") and metric[3:].isdigit():
        k = int(metric[3:])
        if k in scores.jf_after_clicks:
            return scores.jf_after_clicks[k]
    known = [f"jf_{k}" for k in sorted(scores.jf_after_clicks)] + ["jf_mask", "clicks_to_<t>"]
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(known)}")


def score_object(
    pred: Mapping[int, np.ndarray],
    gt: np.ndarray,
    prompt_frame: int,
    *,
    skip_last_frame: bool = False,
) -> float:
    """J&F of one object over the frames after its prompt frame.

    Args:
        pred: frame index -> ``(H, W)`` bool predicted mask; a missing frame is an empty mask.
        gt: ``(T, H, W)`` bool ground truth of the object.
        prompt_frame: the prompted frame (not scored).
        skip_last_frame: leave the clip's last frame out too.

    Raises:
        ValueError: no frame is left to score.
    """
    last = gt.shape[0] - (1 if skip_last_frame else 0)
    frames = range(prompt_frame + 1, last)
    gt_frames = {t: gt[t] for t in frames}
    pred_frames: dict[int, np.ndarray | None] = {t: pred.get(t) for t in frames}
    score = evaluate_masklet(pred_frames, gt_frames, skip_first_and_last=False)
    return score.j_and_f


# -- one video --------------------------------------------------------------------------------


def _check_video(index: int, frames: np.ndarray, masks: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"video {index}: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}"
        )
    if masks.ndim != 4 or masks.shape[1:] != frames.shape[:3]:
        size = ", ".join(map(str, frames.shape[:3]))
        raise ValueError(
            f"video {index}: masks must be (O, {size}) = (O, T, H, W), got {masks.shape}"
        )


def _prompt_frames(masks: np.ndarray, config: EvalConfig) -> dict[int, int]:
    """Object -> first frame where it is visible, for objects with a frame left to score."""
    num_frames = masks.shape[1]
    last_scored = num_frames - (2 if config.skip_last_frame else 1)
    out = {}
    for o in range(masks.shape[0]):
        visible = np.flatnonzero(masks[o].reshape(num_frames, -1).any(1))
        if visible.size and visible[0] < last_scored:
            out[o] = int(visible[0])
    return out


def _evaluate_video(
    predictor: VideoPredictor,
    index: int,
    frames: np.ndarray,
    masks: np.ndarray,
    config: EvalConfig,
) -> VideoScores | None:
    masks = masks.astype(bool, copy=False)
    prompt_frames = _prompt_frames(masks, config)
    if not prompt_frames:
        return None
    groups: dict[int, list[int]] = {}
    for o, t0 in prompt_frames.items():
        groups.setdefault(t0, []).append(o)
    results = {o: _ObjectResult() for o in prompt_frames}
    session = predictor.start_session(ArrayFrameSource(list(frames)))
    try:
        for t0, objects in sorted(groups.items()):
            _evaluate_group(session, t0, objects, masks, config, results)
    finally:
        session.close()
    return VideoScores(
        jf_after_clicks={
            k: float(np.mean([r.jf_after_clicks[k] for r in results.values()]))
            for k in config.click_counts
        },
        clicks_to_target=float(np.mean([r.clicks_to_target for r in results.values()])),
        jf_from_mask=float(np.mean([r.jf_from_mask for r in results.values()])),
        num_objects=len(results),
        video_index=index,
    )


def _evaluate_group(
    session: VideoSession,
    t0: int,
    objects: list[int],
    masks: np.ndarray,
    config: EvalConfig,
    results: dict[int, _ObjectResult],
) -> None:
    """Objects sharing prompt frame ``t0``: clicks, then every prompt state propagated.

    Each (prompt state, object) pair, a state being "after k clicks" or "the GT mask", becomes
    one object of the session, so one propagation tracks them all (batched), at most
    ``max_batch_objects`` at a time.
    """
    session.reset()
    clicks = {}
    for o in objects:
        clicks[o], results[o].clicks_to_target = _simulate_clicks(
            session, t0, o, masks[o, t0], config
        )
    states: list[int | None] = [*config.click_counts, None]  # None: the mask prompt
    slots = [(k, o) for k in states for o in objects]
    for first in range(0, len(slots), config.max_batch_objects):
        chunk = slots[first : first + config.max_batch_objects]
        session.reset()
        for slot_id, (k, o) in enumerate(chunk):
            if k is None:
                session.add_mask(t0, slot_id, masks[o, t0])
            else:
                for i, click in enumerate(clicks[o][:k]):
                    _add_click(session, t0, slot_id, click, first=i == 0)
        preds = _propagate(session, t0)
        for slot_id, (k, o) in enumerate(chunk):
            score = score_object(
                preds[slot_id], masks[o], t0, skip_last_frame=config.skip_last_frame
            )
            if k is None:
                results[o].jf_from_mask = score
            else:
                results[o].jf_after_clicks[k] = score


def _simulate_clicks(
    session: VideoSession, t0: int, obj_id: int, gt: np.ndarray, config: EvalConfig
) -> tuple[list[Click], float]:
    """Click on frame ``t0`` until both the largest click count and the IoU target (or the
    budget) are reached. Returns the clicks and the clicks needed for the target."""
    wanted = max(config.click_counts)
    clicks: list[Click] = []
    reached: int | None = None
    pred = np.zeros_like(gt)
    while len(clicks) < max(wanted, config.max_clicks):
        click = first_click(gt) if not clicks else next_click(pred, gt)
        if click is None:  # the mask is exact: more clicks change nothing
            break
        clicks.append(click)
        pred = _object_mask(_add_click(session, t0, obj_id, click, first=len(clicks) == 1), obj_id)
        in_budget = len(clicks) <= config.max_clicks
        if reached is None and in_budget and mask_iou(pred, gt) >= config.iou_target:
            reached = len(clicks)
        if len(clicks) >= wanted and (reached is not None or len(clicks) >= config.max_clicks):
            break
    return clicks, float(reached if reached is not None else config.max_clicks + 1)


def _add_click(
    session: VideoSession, t0: int, obj_id: int, click: Click, *, first: bool
) -> FrameResult:
    return session.add_points(
        t0,
        obj_id,
        [[click.x, click.y]],
        [1 if click.positive else 0],
        clear_old_points=first,
    )


def _object_mask(result: FrameResult, obj_id: int) -> np.ndarray:
    """``(H, W)`` bool mask of one object in a frame result."""
    i = result.obj_ids.index(obj_id)
    return np.asarray(result.logits[i, 0].numpy() > 0)


def _propagate(session: VideoSession, t0: int) -> dict[int, dict[int, np.ndarray]]:
    """Forward from ``t0``: object -> frame -> ``(H, W)`` bool mask."""
    preds: dict[int, dict[int, np.ndarray]] = {o: {} for o in session.obj_ids}
    for result in session.propagate(start_frame_idx=t0):
        for i, obj_id in enumerate(result.obj_ids):
            preds[obj_id][result.frame_idx] = np.asarray(result.logits[i, 0].numpy() > 0)
    return preds


# -- model state ------------------------------------------------------------------------------


@contextlib.contextmanager
def _evaluation_mode(model: Sam2Model, device: str, config: EvalConfig) -> Iterator[VideoPredictor]:
    """A predictor on ``model`` in eval mode on ``device``; the model's training mode,
    post-processing flags and device are put back afterwards."""
    target = torch.device(device)
    original = next(model.parameters()).device
    move = original.type != target.type or (
        target.index is not None and original.index != target.index
    )
    decoder = model.sam_mask_decoder
    flags = (
        decoder.dynamic_multimask_via_stability,
        decoder.dynamic_multimask_stability_delta,
        decoder.dynamic_multimask_stability_thresh,
        model.binarize_mask_from_pts_for_mem_enc,
    )
    was_training = model.training
    try:
        if move:
            model.to(target)
        model.eval()
        yield VideoPredictor(
            model,
            apply_postprocessing=config.apply_postprocessing,
            dtype=config.dtype,
            feature_cache_size=config.feature_cache_size,
            spill_evicted=False,
        )
    finally:
        (
            decoder.dynamic_multimask_via_stability,
            decoder.dynamic_multimask_stability_delta,
            decoder.dynamic_multimask_stability_thresh,
            model.binarize_mask_from_pts_for_mem_enc,
        ) = flags
        model.train(was_training)
        if move:
            model.to(original)
