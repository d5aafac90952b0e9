"""How far a round's fine-tuning can take a model on one kind of procedural video.

Fine-tunes a checkpoint with the settings ``simulate_engine``'s rounds use (8-frame clips, SAM 2's
recipe with correction clicks, lr 1e-4, the cross-entropy IoU loss, 5 warm-up steps) on fresh
procedural videos, and prints the held-out scores of the DESIGN 7 protocol before and after
(J&F after 1, 3, 5 clicks, clicks to IoU 0.75, J&F from a mask). The held-out videos are the
ones ``simulate_engine --seed 3 --frames 8 --objects 1`` uses; many steps on many videos give
the ceiling its rounds approach, a few steps on a few videos what one round does.

    python benchmarks/bench_round_ceiling.py --checkpoint var/demo-model/demo-<key>.pt
    python benchmarks/bench_round_ceiling.py --checkpoint CKPT --videos 24 --steps 400
    python benchmarks/bench_round_ceiling.py --checkpoint CKPT --objects 3   # crowded clips
    python benchmarks/bench_round_ceiling.py --checkpoint CKPT --videos 8 --num-frames 4 \
        --correction-clicks 2 --warmup 20   # a short one-object stage with the demo's clip settings
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.simulation.procedural import ProceduralSpec, make_videos  # noqa: E402
from engine.simulation.protocol import EvalConfig, evaluate_model  # noqa: E402
from model.build import build_sam2  # noqa: E402
from model.sam2_base import Sam2Model  # noqa: E402
from model.training.clips import TrainClip  # noqa: E402
from model.training.config import TrainConfig  # noqa: E402
from model.training.loop import train  # noqa: E402


def scores(model: Sam2Model, videos: list[tuple], label: str) -> None:
    model.eval()
    summary = evaluate_model(model, videos, EvalConfig()).summary()
    print(label, " ".join(f"{k} {v:.3f}" for k, v in summary.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--config", default="test_tiny")
    parser.add_argument("--videos", type=int, default=4, help="training videos")
    parser.add_argument("--objects", type=int, default=1, help="objects per training video")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--heldout", type=int, default=6)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--num-frames", type=int, default=8, help="frames per training clip")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--correction-clicks", type=int, default=7, help="SAM 2's 7 by default")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up steps")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = ProceduralSpec(num_frames=args.frames, height=128, width=128, num_objects=1)
    heldout = [(v.frames, v.masks) for v in make_videos(10_003, args.heldout, spec)]
    model = build_sam2(args.config, args.checkpoint)
    scores(model, heldout, "before:")
    train_spec = ProceduralSpec(
        num_frames=args.frames, height=128, width=128, num_objects=args.objects
    )
    clips = [
        TrainClip(frames=v.frames, masks=v.masks)
        for v in make_videos(50_000, args.videos, train_spec)
    ]
    config = TrainConfig(
        steps=args.steps,
        num_frames=min(args.num_frames, args.frames),
        base_lr=args.lr,
        vision_lr=args.lr,
        seed=1,
        bf16=False,
        iou_loss="bce",
        warmup_steps=args.warmup,
        correction_clicks=args.correction_clicks,
    )
    model.train()
    began = time.perf_counter()
    train(model, clips, config)
    seconds = time.perf_counter() - began
    print(f"trained {args.steps} steps on {args.videos} videos in {seconds:.0f} s")
    scores(model, heldout, "after: ")


if __name__ == "__main__":
    main()
