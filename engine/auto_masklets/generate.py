"""The automatic-masklets job (DESIGN.md 5.4): grid prompts on frame 0, SAM 2 through the video.

Steps, all on the worker:

1. frame 0 is read from storage and embedded once by the image predictor; a grid of single-point
   prompts (plus crop layers) gives mask proposals, filtered by predicted IoU, stability score,
   NMS and optionally non-overlap (:mod:`engine.auto_masklets.proposals`);
2. every kept proposal becomes one object of a single video session (its cleaned frame-0 mask is
   the prompt), and the session propagates them together, frame by frame, with frames streamed
   from storage (never the whole video in memory);
3. each frame's logits give a per-object mask (specks and holes below ``min_region_area``
   removed) and a stability score;
4. the masklets are written in one transaction as kind ``auto``, status ``submitted``, frame
   source ``auto``, replacing those an earlier attempt of the same job wrote.

Progress is reported per prompt batch and per frame; a cancel request stops the job between
frames (or prompt batches) and writes nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction

from engine.auto_masklets.cleanup import clean_mask, stability_score
from engine.auto_masklets.proposals import (
    AutoMaskConfig,
    CropBox,
    PredictFn,
    Proposal,
    generate_crop_boxes,
    generate_first_frame_proposals,
    point_grids_per_layer,
)
from engine.errors import Conflict, InvalidInput
from engine.inference import registry
from engine.jobs.lifecycle import JobCancelled, JobReporter, do_create_job, run_job
from engine.masklets.revisions import FrameMask, do_create_masklet
from engine.masks.rle import encode_rle
from engine.models import Job, Masklet, MaskletRevision, User, Video
from engine.videos.frames import FrameSizeUnknown, storage_frame_source

if TYPE_CHECKING:
    from model.batched import LowResBatch
    from model.frames import FrameSource
    from model.image_predictor import ImagePredictor

# torch and the model are imported where they run, so the web process that starts jobs (it only
# checks the request) never loads them.

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
"""``(fraction in [0, 1], message)``; may raise :class:`JobCancelled`."""

#: Share of the progress bar spent on frame-0 proposals; the rest is propagation.
_PROPOSAL_SHARE = 0.3
#: Upper bounds on request-controlled sizes (a single request must not occupy a GPU for hours).
_LIMITS = {"points_per_side": 128, "crop_n_layers": 3, "max_objects": 512, "points_per_batch": 1024}
_DTYPES = ("float32", "bfloat16")


class AutoMaskletError(InvalidInput):
    """The job cannot run as asked (message for the user; HTTP 4xx)."""


class InvalidAutoMaskConfig(AutoMaskletError):
    """An override has an unknown name, a wrong type or a value out of range."""


class VideoNotReady(AutoMaskletError, Conflict):
    """The video has no decoded frames yet (or failed to decode)."""


def _default_proposal_config() -> AutoMaskConfig:
    # SAM's automatic generator recipe with one crop layer (the SAM 2 paper: 32 x 32 plus crops),
    # non-overlapping proposals and speck/hole removal, since every proposal costs a reviewer's
    # time. 64 prompts per decoder call, as SAM 2's generator (one batch's logits are 64 x 3
    # low-res masks; only those passing the IoU filter are upsampled).
    return AutoMaskConfig(
        points_per_side=32,
        points_per_batch=64,
        crop_n_layers=1,
        crop_n_points_downscale_factor=2,
        min_region_area=100,
        min_mask_area=100,
        non_overlapping=True,
    )


@dataclass(frozen=True)
class AutoMaskletConfig:
    """Settings of one auto-masklet job.

    Attributes:
        proposals: frame-0 sampling and filtering; ``min_region_area`` is also applied to every
            propagated frame (specks and holes smaller than that many pixels are removed).
        max_objects: at most this many proposals (best first) are propagated; bounds the
            session's memory, which grows with objects x frame size.
        dtype: compute dtype of the model ("float32" or "bfloat16" autocast).
        non_overlap_frames: give each pixel of a propagated frame to one object only.
    """

    proposals: AutoMaskConfig = field(default_factory=_default_proposal_config)
    max_objects: int = 64
    dtype: str = "float32"
    non_overlap_frames: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.max_objects <= _LIMITS["max_objects"]:
            raise ValueError(f"max_objects must lie in [1, {_LIMITS['max_objects']}]")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}")

    def to_json(self) -> dict[str, Any]:
        """Flat ``{name: value}`` of every setting (the form overrides use)."""
        flat = asdict(self.proposals)
        flat.update(
            max_objects=self.max_objects,
            dtype=self.dtype,
            non_overlap_frames=self.non_overlap_frames,
        )
        return flat


def _field_kinds(cls: type) -> dict[str, str]:
    """Field name -> its annotation as written (the module uses postponed annotations)."""
    return {f.name: str(f.type) for f in fields(cls)}


_PROPOSAL_FIELDS = _field_kinds(AutoMaskConfig)
_JOB_FIELDS = {k: v for k, v in _field_kinds(AutoMaskletConfig).items() if k != "proposals"}


def _check_value(name: str, kind: str, value: Any) -> Any:
    """The override converted to its field's type, or :class:`InvalidAutoMaskConfig`."""
    if kind == "int | None" and value is None:
        return None
    if kind in ("int", "int | None"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidAutoMaskConfig(f"{name} must be an integer, got {value!r}")
        limit = _LIMITS.get(name)
        if limit is not None and value > limit:
            raise InvalidAutoMaskConfig(f"{name} must be at most {limit}, got {value}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidAutoMaskConfig(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise InvalidAutoMaskConfig(f"{name} must be finite, got {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidAutoMaskConfig(f"{name} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise InvalidAutoMaskConfig(f"{name} must be a string, got {value!r}")
        return value
    raise AssertionError(f"unhandled setting type {kind} of {name}")  # pragma: no cover


def config_from_overrides(overrides: Mapping[str, Any] | None) -> AutoMaskletConfig:
    """The job's config: defaults with ``overrides`` (flat ``{name: value}``, JSON types) applied.

    Raises:
        InvalidAutoMaskConfig: unknown name, wrong type, or a value the configs refuse.
    """
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise InvalidAutoMaskConfig(
            f"config must be an object of settings, got {type(overrides).__name__}"
        )
    unknown = sorted(set(overrides) - set(_PROPOSAL_FIELDS) - set(_JOB_FIELDS))
    if unknown:
        known = ", ".join(sorted({*_PROPOSAL_FIELDS, *_JOB_FIELDS}))
        raise InvalidAutoMaskConfig(f"unknown setting(s) {', '.join(unknown)}; known: {known}")
    proposal_args = asdict(_default_proposal_config())
    job_args: dict[str, Any] = {}
    for name, value in overrides.items():
        if name in _PROPOSAL_FIELDS:
            proposal_args[name] = _check_value(name, _PROPOSAL_FIELDS[name], value)
        else:
            job_args[name] = _check_value(name, _JOB_FIELDS[name], value)
    try:
        return AutoMaskletConfig(proposals=AutoMaskConfig(**proposal_args), **job_args)
    except ValueError as exc:
        raise InvalidAutoMaskConfig(str(exc)) from exc


# ---------------------------------------------------------------------------------------------
# Model side (no Django): proposals and propagation


@dataclass(frozen=True)
class AutoMasklet:
    """One propagated proposal: its frame-0 proposal and a mask per frame (None = absent)."""

    proposal: Proposal
    frames: dict[int, FrameMask]


def count_prompts(image_hw: tuple[int, int], config: AutoMaskConfig) -> int:
    """How many point prompts :func:`generate_first_frame_proposals` will run (for progress)."""
    grids = point_grids_per_layer(
        config.points_per_side, config.crop_n_layers, config.crop_n_points_downscale_factor
    )
    crops = generate_crop_boxes(image_hw, config.crop_n_layers, config.crop_overlap_ratio)
    return sum(len(grids[crop.layer]) for crop in crops)


def _point_predictor(predictor: ImagePredictor, on_batch: Callable[[int], None]) -> PredictFn:
    """A ``PredictFn`` over an image already set on ``predictor``: 3 mask logits per point.

    All points of a batch are decoded in one mask-decoder call (``decode_batch``), as SAM's
    automatic mask generator does.
    """

    def predict(points: np.ndarray, labels: np.ndarray) -> tuple[LowResBatch, np.ndarray]:
        out = predictor.decode_batch(
            point_coords=points[:, None, :], point_labels=labels[:, None], multimask_output=True
        )
        on_batch(len(points))
        # (B, 3, h, w) float32 logits, upsampled only for the masks that pass the IoU filter
        return out, out.iou_predictions

    return predict


def _single_point_predictor(
    predictor: ImagePredictor, on_batch: Callable[[int], None]
) -> PredictFn:
    """The same ``PredictFn`` with one decoder call per point (the reference for benchmarks)."""

    def predict(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks: list[np.ndarray] = []
        ious: list[np.ndarray] = []
        for point, label in zip(points, labels):
            out = predictor.predict(
                point_coords=point[None],
                point_labels=label[None],
                multimask_output=True,
                return_logits=True,
            )
            masks.append(out.masks)  # (3, h, w) float32 logits
            ious.append(out.iou_predictions)  # (3,)
        on_batch(len(points))
        return np.stack(masks), np.stack(ious)

    return predict


_PREDICTORS = {"batched": _point_predictor, "per_point": _single_point_predictor}


def first_frame_proposals(
    model: Any,
    frames: FrameSource,
    config: AutoMaskletConfig,
    progress: Progress,
    decode: str = "batched",
) -> list[Proposal]:
    """Proposals on frame 0, best first, at most ``config.max_objects``.

    ``progress`` receives fractions in [0, 1] of the prompts done. ``decode`` is "batched"
    (``points_per_batch`` prompts per decoder call, the kept masks of a batch cleaned together)
    or "per_point" (one decoder call per prompt and one cleanup per mask: the earlier path, kept
    as the reference for benchmarks and tests; the same proposals).
    """
    make_predict_fn = _PREDICTORS[decode]
    from model.image_predictor import ImagePredictor

    first = frames.read(0)
    image = np.asarray(first.convert("RGB")) if hasattr(first, "convert") else np.asarray(first)
    image_hw = (int(image.shape[0]), int(image.shape[1]))
    total = max(count_prompts(image_hw, config.proposals), 1)
    done = 0

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        progress(done / total, f"frame 0: {done}/{total} point prompts")

    full = ImagePredictor(model, dtype=config.dtype)
    full.set_image(image)

    def crop_predict(crop: CropBox) -> PredictFn:
        predictor = ImagePredictor(model, dtype=config.dtype)
        predictor.set_image(np.ascontiguousarray(image[crop.y0 : crop.y1, crop.x0 : crop.x1]))
        return make_predict_fn(predictor, on_batch)

    proposals = generate_first_frame_proposals(
        make_predict_fn(full, on_batch),
        image_hw,
        config.proposals,
        crop_predict,
        postprocess="batched" if decode == "batched" else "per_mask",
    )
    return proposals[: config.max_objects]


def propagate_proposals(
    model: Any,
    frames: FrameSource,
    proposals: list[Proposal],
    config: AutoMaskletConfig,
    progress: Progress,
) -> list[AutoMasklet]:
    """Track every proposal through the video in one session (objects batched per frame).

    Frame 0 keeps the proposal itself (full resolution, its image-predictor stability score);
    every later frame gets the propagated mask, cleaned, and the stability score of its logits.
    ``progress`` receives the fraction of frames done and may raise to stop between frames.
    """
    from model.video_predictor import VideoPredictor

    if not proposals:
        return []
    cleanup = config.proposals.min_region_area
    threshold = config.proposals.mask_threshold
    offset = config.proposals.stability_score_offset
    per_object: list[dict[int, FrameMask]] = [
        {0: FrameMask(p.rle, source="auto", stability=p.stability_score)} for p in proposals
    ]
    predictor = VideoPredictor(
        model,
        apply_postprocessing=True,
        dtype=config.dtype,
        non_overlap_masks=config.non_overlap_frames,
        spill_evicted=False,  # forward-only: evicted memories are never needed again
    )
    num_frames = len(frames)
    with predictor.start_session(frames) as session:
        # one result for all objects (one add_mask each would build N results of 1..N objects)
        session.add_masks(0, {obj_id: p.mask for obj_id, p in enumerate(proposals)})
        progress(1 / num_frames, f"frame 1/{num_frames}")
        for result in session.propagate(start_frame_idx=0):
            if result.frame_idx == 0:
                continue
            logits = result.logits[:, 0].numpy()  # (objects, H, W) float32
            scores = stability_score(logits, threshold, offset)
            for index, obj_id in enumerate(result.obj_ids):
                mask = clean_mask(logits[index] > threshold, cleanup)
                per_object[obj_id][result.frame_idx] = (
                    FrameMask(encode_rle(mask), source="auto", stability=float(scores[index]))
                    if mask.any()
                    else FrameMask(None, source="auto", stability=None)
                )
            del logits, result
            done = len(per_object[0])
            progress(done / num_frames, f"frame {done}/{num_frames}")
    return [AutoMasklet(p, masks) for p, masks in zip(proposals, per_object)]


def compute_auto_masklets(
    model: Any, frames: FrameSource, config: AutoMaskletConfig, progress: Progress
) -> list[AutoMasklet]:
    """Proposals on frame 0, then propagation; ``progress`` spans both in [0, 1]."""
    proposals = first_frame_proposals(
        model, frames, config, lambda f, m: progress(_PROPOSAL_SHARE * f, m)
    )
    progress(_PROPOSAL_SHARE, f"{len(proposals)} proposals on frame 0")
    share = 1.0 - _PROPOSAL_SHARE
    return propagate_proposals(
        model, frames, proposals, config, lambda f, m: progress(_PROPOSAL_SHARE + share * f, m)
    )


# ---------------------------------------------------------------------------------------------
# Platform side: starting, running and saving the job


def check_video_ready(video: Video) -> None:
    if video.status != Video.Status.READY or video.frame_count < 1:
        detail = f": {video.error}" if video.error else ""
        raise VideoNotReady(
            f"video {video.pk} is {video.status}, not ready{detail}; "
            "automatic masklets need its decoded frames"
        )


def do_start_auto_masklets(
    video: Video, user: User | None, overrides: Mapping[str, Any] | None = None
) -> Job:
    """Check the request and queue an auto-masklet job for ``video`` (sent after commit).

    Raises:
        VideoNotReady, InvalidAutoMaskConfig: the request is wrong.
        registry.ModelNotConfigured: no model to run (a deployment problem).
    """
    check_video_ready(video)
    config = config_from_overrides(overrides)
    registry.resolve_model_spec()
    return do_create_job(
        Job.Kind.AUTO_MASKLETS,
        args={"video_id": video.pk, "config": dict(overrides or {}), "resolved": config.to_json()},
        project=video.project,
        video=video,
        created_by=user,
    )


def job_marker(job_id: int) -> str:
    """The note on revision 1 of every masklet a job creates: how a re-run finds them."""
    return f"auto-masklets job {job_id}"


def masklets_of_job(video: Video, job_id: int) -> Any:
    """The auto masklets this job created (QuerySet)."""
    created = MaskletRevision.objects.filter(number=1, note=job_marker(job_id)).values("masklet")
    return Masklet.objects.filter(video=video, kind=Masklet.Kind.AUTO, pk__in=created)


@transaction.atomic
def do_save_auto_masklets(video: Video, job: Job, masklets: list[AutoMasklet]) -> list[Masklet]:
    """Replace the job's earlier auto masklets (if any) by ``masklets``; returns the new rows.

    Locks the video row (through :func:`do_create_masklet`), so concurrent writers of object ids
    wait; the delete and the creates commit together.
    """
    Video.objects.select_for_update().filter(pk=video.pk).first()
    replaced, _ = masklets_of_job(video, job.pk).delete()
    if replaced:
        logger.info("auto-masklets job %s: replaced its earlier masklets", job.pk)
    return [
        do_create_masklet(
            video,
            author=None,
            frames=item.frames,
            kind=Masklet.Kind.AUTO,
            status=Masklet.Status.SUBMITTED,
            note=job_marker(job.pk),
        )
        for item in masklets
    ]


def _job_progress(reporter: JobReporter) -> Progress:
    """Throttled progress writes, plus a cancel check on every call (between frames)."""

    def progress(fraction: float, message: str) -> None:
        reporter.progress(fraction, message)
        if Job.objects.filter(pk=reporter.job.pk, cancel_requested=True).exists():
            raise JobCancelled(f"job {reporter.job.pk} was cancelled")

    return progress


def run_auto_masklets_job(job_id: int) -> None:
    """Worker entry point. Safe to run again: the job's masklets are replaced, not duplicated."""
    run_job(
        job_id,
        _auto_masklets_work,
        expected=(AutoMaskletError, FrameSizeUnknown, registry.ModelNotConfigured),
        internal_error="Internal error in the auto-masklets job",
    )


def _auto_masklets_work(job: Job, reporter: JobReporter) -> dict[str, Any]:
    video = Video.objects.filter(pk=job.args.get("video_id")).first()
    if video is None:
        raise VideoNotReady(f"video {job.args.get('video_id')} does not exist")
    check_video_ready(video)
    config = config_from_overrides(job.args.get("config"))
    loaded = registry.load_model()
    frames = storage_frame_source(video)
    masklets = compute_auto_masklets(loaded.model, frames, config, _job_progress(reporter))
    reporter.progress(1.0, "saving masklets", force=True)
    saved = do_save_auto_masklets(video, job, masklets)
    return {
        "masklet_ids": [m.pk for m in saved],
        "object_ids": [m.object_id for m in saved],
        "model": loaded.spec.describe(),
        "frames": video.frame_count,
    }


__all__ = [
    "AutoMasklet",
    "AutoMaskletConfig",
    "AutoMaskletError",
    "InvalidAutoMaskConfig",
    "VideoNotReady",
    "compute_auto_masklets",
    "config_from_overrides",
    "do_save_auto_masklets",
    "do_start_auto_masklets",
    "first_frame_proposals",
    "masklets_of_job",
    "propagate_proposals",
    "run_auto_masklets_job",
]
