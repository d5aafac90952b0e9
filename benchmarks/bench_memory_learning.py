"""Does a small model trained from scratch learn to track through its memory? (issue 12)

The demo recipe's image stage (single procedural frames, clicks) then a long clip stage (clips of
``--num-frames`` frames, several objects each), evaluated every ``--eval-every`` clip steps on
held-out procedural videos with the simulated protocol (``evaluate_model``: J&F after 1, 3 and 5
clicks on frame 0 and from a frame-0 mask) and a discrimination check: two objects of one video
prompted with their frame-0 masks in one session, then propagated; the mean IoU between their
propagated masks on the later frames (``overlap``) is ~1 when memory is ignored (each object's
prediction is the frame's most salient thing) and ~0 when each object is tracked.

    python benchmarks/bench_memory_learning.py --image-steps 400 --clip-steps 1500 --eval-every 250

``--save DIR`` writes ``clips-<step>.pt`` at each evaluation (official checkpoint format).

``--recipe [FIELD=VALUE ...]`` trains the offline demo model's recipe instead
(``engine.training.demo_recipe.DemoRecipe``, fields overridden as given: images, then still clips
from a local memory attention, then moving clips) and prints the overlap after each stage and the
held-out scores at the end:

    python benchmarks/bench_memory_learning.py --recipe
    python benchmarks/bench_memory_learning.py --recipe memory_locality=0 copy_steps=0
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_click_learning import image_clips, image_stage_config  # noqa: E402
from engine.simulation.procedural import ProceduralSpec, ProceduralVideo, make_videos  # noqa: E402
from engine.simulation.protocol import EvalConfig, evaluate_model  # noqa: E402
from engine.training.demo_recipe import DemoRecipe, heldout_videos, train_demo_checkpoint  # noqa: E402
from model.build import build_sam2  # noqa: E402
from model.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from model.frames import ArrayFrameSource  # noqa: E402
from model.sam2_base import Sam2Model  # noqa: E402
from model.training.clips import TrainClip  # noqa: E402
from model.training.config import TrainConfig  # noqa: E402
from model.training.loop import StepStats, train  # noqa: E402
from model.video_predictor import VideoPredictor  # noqa: E402


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@torch.no_grad()
def overlap(model: Sam2Model, videos: list[ProceduralVideo]) -> tuple[float, float]:
    """(mean IoU between objects 0 and 1's propagated masks, mean IoU of each with its own
    ground truth) over frames 1.. of each video whose objects 0 and 1 show on frame 0."""
    predictor = VideoPredictor(model, apply_postprocessing=False)
    between: list[float] = []
    own: list[float] = []
    for video in videos:
        if video.masks.shape[0] < 2 or not (video.masks[0, 0].any() and video.masks[1, 0].any()):
            continue
        session = predictor.start_session(ArrayFrameSource(list(video.frames)))
        session.add_masks(0, {0: video.masks[0, 0], 1: video.masks[1, 0]})
        for result in session.propagate():
            if result.frame_idx == 0:
                continue
            masks = [result.logits[result.obj_ids.index(o), 0].numpy() > 0 for o in (0, 1)]
            between.append(_iou(masks[0], masks[1]))
            own.extend(_iou(masks[o], video.masks[o, result.frame_idx]) for o in (0, 1))
        session.close()
    return float(np.mean(between)), float(np.mean(own))


def evaluate(model: Sam2Model, heldout: list[ProceduralVideo], step: int, began: float) -> None:
    was_training = model.training
    model.eval()
    scores = evaluate_model(model, [(v.frames, v.masks) for v in heldout], EvalConfig()).summary()
    between, own = overlap(model, heldout)
    if was_training:
        model.train()
    print(
        f"clip step {step:5d} ({time.perf_counter() - began:6.0f} s): "
        + " ".join(f"{k} {v:.3f}" for k, v in scores.items())
        + f" | overlap {between:.3f} own IoU {own:.3f}",
        flush=True,
    )


def run_recipe(fields: list[str], save: Path | None) -> None:
    """Train the demo recipe with ``FIELD=VALUE`` overrides; overlap after each stage."""
    recipe = DemoRecipe()
    for field in fields:
        name, _, value = field.partition("=")
        if not hasattr(recipe, name):
            raise SystemExit(f"DemoRecipe has no field {name!r}")
        kind = type(getattr(recipe, name))
        parsed: Any = value == "True" if kind is bool else kind(value)
        recipe = replace(recipe, **{name: parsed})
    print(recipe, flush=True)
    heldout = heldout_videos(recipe)
    began = time.perf_counter()

    def after_stage(stage: str, model: Sam2Model) -> None:
        model.eval()
        between, own = overlap(model, heldout)
        print(
            f"after {stage:6s} ({time.perf_counter() - began:4.0f} s): "
            f"overlap {between:.3f} own IoU {own:.3f}",
            flush=True,
        )

    path = (save or Path(".")) / f"demo-{recipe.key()}.pt"
    scores = train_demo_checkpoint(recipe, path, after_stage=after_stage)
    print(
        f"held-out ({time.perf_counter() - began:.0f} s): "
        + " ".join(f"{k} {v:.3f}" for k, v in scores.items())
        + f"; checkpoint {path}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", nargs="*", help="train the demo recipe (FIELD=VALUE ...)")
    parser.add_argument("--config", default="test_tiny")
    parser.add_argument("--init", type=Path, help="start from this checkpoint (skips images)")
    parser.add_argument("--image-steps", type=int, default=400)
    parser.add_argument("--clip-steps", type=int, default=1500)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--num-frames", type=int, default=4)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--train-videos", type=int, default=48)
    parser.add_argument("--heldout", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--clip-lr", type=float, default=0.0, help="clip stage rate (0: --lr)")
    parser.add_argument("--correction-clicks", type=int, default=2)
    parser.add_argument(
        "--prob-point-prompt",
        type=float,
        default=0.5,
        help="clip stage: clicks or a box on the conditioning frames (else their GT masks)",
    )
    parser.add_argument("--init-cond-frames", type=int, default=2, help="at most this many")
    parser.add_argument(
        "--train-only",
        nargs="*",
        default=[],
        help="in the clip stage, train only parameters whose names start with these",
    )
    parser.add_argument(
        "--freeze",
        nargs="*",
        default=[],
        help="in the clip stage, freeze parameters whose names start with these (image_encoder)",
    )
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.recipe is not None:
        run_recipe(args.recipe, args.save)
        return
    size = build_sam2(args.config).image_size
    spec = ProceduralSpec(num_frames=8, height=size, width=size, num_objects=args.objects)
    train_set = make_videos(1000, args.train_videos, spec)
    heldout = make_videos(1000 + args.train_videos, args.heldout, spec)
    torch.manual_seed(7)
    model = build_sam2(args.config)
    if args.init is not None:
        load_checkpoint(model, args.init)
    warmup, iou_loss, seed = 20, "bce", 7
    began = time.perf_counter()
    if args.init is None and args.image_steps:
        image_spec = ProceduralSpec(num_frames=8, height=size, width=size, num_objects=4)
        images = image_clips(make_videos(5000, 100, image_spec))
        image_config = image_stage_config(args.image_steps, 4, args.lr, 1, warmup, iou_loss, seed)
        train(model, images, image_config)
        print(f"image stage: {args.image_steps} steps in {time.perf_counter() - began:.0f} s")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            save_checkpoint(model, args.save / "images.pt")
    evaluate(model, heldout, 0, began)
    lr = args.clip_lr or args.lr
    config = TrainConfig(
        steps=args.clip_steps,
        num_frames=args.num_frames,
        max_objects=args.objects,
        correction_clicks=args.correction_clicks,
        prob_point_prompt=args.prob_point_prompt,
        init_cond_frames=args.init_cond_frames,
        base_lr=lr,
        vision_lr=lr,
        warmup_steps=warmup,
        iou_loss=iou_loss,
        seed=seed,
        bf16=False,
    )
    losses: list[float] = []

    def on_step(stats: StepStats) -> None:
        losses.append(stats.loss)
        if stats.step % args.eval_every == 0 or stats.step == args.clip_steps:
            print(f"  last {len(losses)} losses: mean {np.mean(losses):.3f}", flush=True)
            losses.clear()
            evaluate(model, heldout, stats.step, began)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                save_checkpoint(model, args.save / f"clips-{stats.step}.pt")

    for name, param in model.named_parameters():
        chosen = not args.train_only or name.startswith(tuple(args.train_only))
        frozen = bool(args.freeze) and name.startswith(tuple(args.freeze))
        param.requires_grad_(chosen and not frozen)
    clips = [TrainClip(frames=v.frames, masks=v.masks) for v in train_set]
    train(model, clips, config, on_step=on_step)


if __name__ == "__main__":
    main()
