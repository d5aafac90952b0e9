"""How the offline demo model is made: :class:`DemoRecipe` and :func:`train_demo_checkpoint`,
our own training on procedural videos from scratch (no Django here: benchmarks run it too;
:mod:`engine.training.demo_model` registers and promotes the result)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoRecipe:
    """How the offline demo model is made (every field is part of its cache key).

    Three stages. As SAM 2 mixes SA-1B images with videos, first ``image_steps`` steps on single
    frames (of ``image_videos`` procedural videos with ``image_objects`` objects each: one
    backbone pass trains the decoder on every object, with one click plus
    ``image_correction_clicks`` corrections). Then the memory: the memory attention starts
    local (``memory_locality``, :mod:`model.training.init`) and ``copy_steps`` steps on still
    two-frame clips (a frame and itself, the objects' masks as prompts on the first), with
    memories made of the mask alone, teach the decoder to segment what the memory points at;
    without them the model never tracks. Last,
    ``steps`` steps of SAM 2's recipe on ``num_frames``-frame clips of ``train_videos`` moving
    videos (clicks, boxes or masks, correction clicks) at the lower ``track_lr`` (at the image
    rate, motion undoes the lookup within a few hundred steps). From scratch: a warm-up, high
    rates and the cross-entropy IoU loss (``model.training.losses``: L1 kills the IoU head of a
    random model).
    """

    config: str = "test_tiny"
    image_videos: int = 100
    image_objects: int = 4
    image_steps: int = 800
    image_correction_clicks: int = 1
    train_videos: int = 48
    eval_videos: int = 4
    first_seed: int = 1000
    frames: int = 8
    size: int = 128
    objects: int = 3
    occlusion: bool = True
    reappear: bool = True
    memory_locality: float = 8.0  # 0: the memory attention's random initialisation
    copy_steps: int = 750
    copy_lr: float = 3e-4
    steps: int = 300
    num_frames: int = 4
    correction_clicks: int = 2
    base_lr: float = 2e-3
    vision_lr: float = 2e-3
    track_lr: float = 1e-4
    warmup_steps: int = 20
    iou_loss: str = "bce"
    seed: int = 7

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def say_or_log(say: Callable[[str], None] | None, message: str) -> None:
    """To ``say`` (a command's output) when given, else to the log (not both: one line each)."""
    if say is not None:
        say(message)
    else:
        logger.info(message)


def train_demo_checkpoint(
    recipe: DemoRecipe,
    path: Path,
    say: Callable[[str], None] | None = None,
    after_stage: Callable[[str, Any], None] | None = None,
) -> dict[str, float]:
    """Train ``recipe`` from scratch on procedural videos, write the checkpoint to ``path`` and
    return its scores on held-out procedural videos (``jf_1, jf_3, ...``). ``after_stage`` is
    called with ("images" | "still" | "clips", the model) after each stage that ran."""
    import torch

    from engine.simulation.procedural import make_videos
    from engine.simulation.protocol import EvalConfig, evaluate_model
    from model.build import build_sam2
    from model.checkpoint import save_checkpoint
    from model.training.clips import TrainClip
    from model.training.config import TrainConfig
    from model.training.init import localize_memory_attention, mask_only_memory
    from model.training.loop import train

    train_set = make_videos(recipe.first_seed, recipe.train_videos, video_spec(recipe))
    eval_set = heldout_videos(recipe)
    torch.manual_seed(recipe.seed)
    model = build_sam2(recipe.config)
    common: dict[str, Any] = {
        "base_lr": recipe.base_lr,
        "vision_lr": recipe.vision_lr,
        "warmup_steps": recipe.warmup_steps,
        "iou_loss": recipe.iou_loss,
        "seed": recipe.seed,
        "bf16": False,  # autocast to bf16 is slow on most CPUs; the demo model is made on CPU
    }
    if recipe.image_steps > 0:
        images = image_clips(recipe)
        say_or_log(say, f"  demo model: {recipe.image_steps} steps on {len(images)} images")
        image_config = TrainConfig(
            steps=recipe.image_steps,
            num_frames=1,
            max_objects=recipe.image_objects,
            prob_point_prompt=1.0,  # a mask prompt on an image is its own output: nothing to learn
            correction_frames=1 if recipe.image_correction_clicks else 0,
            correction_clicks=recipe.image_correction_clicks,
            **common,
        )
        train(model, images, image_config, on_step=_reporter("images", recipe.image_steps, say))
        if after_stage is not None:
            after_stage("images", model)
    if recipe.memory_locality > 0:
        localize_memory_attention(model, recipe.memory_locality)
    if recipe.copy_steps > 0:
        still = still_clips(train_set, recipe.frames)
        say_or_log(say, f"  demo model: {recipe.copy_steps} steps on {len(still)} still clips")
        copy_config = TrainConfig(
            steps=recipe.copy_steps,
            num_frames=2,
            max_objects=recipe.objects,
            prob_point_prompt=0.0,  # the GT masks on frame 0: all there is to learn is the lookup
            init_cond_frames=1,
            **{**common, "base_lr": recipe.copy_lr, "vision_lr": recipe.copy_lr},
        )
        frozen = mask_only_memory(model)
        train(model, still, copy_config, on_step=_reporter("still", recipe.copy_steps, say))
        for param in frozen:
            param.requires_grad_(True)
        if after_stage is not None:
            after_stage("still", model)
    config = TrainConfig(
        steps=recipe.steps,
        num_frames=min(recipe.num_frames, recipe.frames),
        max_objects=recipe.objects,
        correction_clicks=recipe.correction_clicks,
        **{**common, "base_lr": recipe.track_lr, "vision_lr": recipe.track_lr},
    )
    clips = [TrainClip(frames=v.frames, masks=v.masks) for v in train_set]
    say_or_log(say, f"  demo model: {recipe.steps} steps on {len(clips)} clips")
    train(model, clips, config, on_step=_reporter("clips", recipe.steps, say))
    if after_stage is not None:
        after_stage("clips", model)
    model.eval()
    say_or_log(say, f"  demo model: evaluating on {recipe.eval_videos} held-out procedural videos")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, path)
    scores = evaluate_model(model, [(v.frames, v.masks) for v in eval_set], EvalConfig())
    return {k: float(v) for k, v in scores.summary().items()}


def video_spec(recipe: DemoRecipe) -> Any:
    """The ``ProceduralSpec`` of the recipe's training and held-out videos."""
    from engine.simulation.procedural import ProceduralSpec

    return ProceduralSpec(
        num_frames=recipe.frames,
        height=recipe.size,
        width=recipe.size,
        num_objects=recipe.objects,
        occlusion=recipe.occlusion,
        reappear=recipe.reappear,
    )


def heldout_videos(recipe: DemoRecipe) -> list[Any]:
    """The recipe's held-out procedural videos (seeds right after the training videos')."""
    from engine.simulation.procedural import make_videos

    first = recipe.first_seed + recipe.train_videos
    return make_videos(first, recipe.eval_videos, video_spec(recipe))


def image_clips(recipe: DemoRecipe) -> list[Any]:
    """One-frame training clips (``TrainClip``) for the image stage: frames 0, middle and last
    of ``image_videos`` procedural videos with ``image_objects`` objects (seeds after the
    training and held-out videos'); frames showing no object are left out."""
    from engine.simulation.procedural import make_videos
    from model.training.clips import TrainClip

    spec = replace(video_spec(recipe), num_objects=recipe.image_objects, reappear=False)
    first = recipe.first_seed + recipe.train_videos + recipe.eval_videos
    clips = []
    for video in make_videos(first, recipe.image_videos, spec):
        for t in sorted({0, recipe.frames // 2, recipe.frames - 1}):
            if video.masks[:, t].any():
                clips.append(
                    TrainClip(frames=video.frames[t : t + 1], masks=video.masks[:, t : t + 1])
                )
    return clips


def still_clips(videos: list[Any], frames: int) -> list[Any]:
    """Two-frame clips of a frame and itself (``TrainClip``): frames 0 and ``frames // 2`` of
    each video, where an object shows."""
    from model.training.clips import TrainClip

    clips = []
    for video in videos:
        for t in sorted({0, frames // 2}):
            if video.masks[:, t].any():
                clips.append(TrainClip(frames=video.frames[[t, t]], masks=video.masks[:, [t, t]]))
    return clips


def _reporter(stage: str, steps: int, say: Callable[[str], None] | None) -> Callable[..., None]:
    every = max(1, steps // 10)

    def report(stats: Any) -> None:
        if stats.step % every == 0 or stats.step == steps:
            say_or_log(
                say, f"  demo model ({stage}): step {stats.step}/{steps}, loss {stats.loss:.3f}"
            )

    return report
