"""`python -m model train ...` (also under `torchrun --nproc_per_node N -m model train ...`)."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import torch

from model.checkpoint import load_checkpoint
from model.config import get_config
from model.sam2_base import Sam2Model
from model.training import distributed
from model.training.clips import load_clips
from model.training.config import TrainConfig
from model.training.loop import StepStats, train


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune SAM 2 on a folder of .npz training clips")
    p.add_argument("--config", required=True, help="model config name, e.g. sam2.1_hiera_t")
    p.add_argument("--data", required=True, type=Path, help="folder of clip .npz files")
    p.add_argument("--steps", required=True, type=int, help="optimiser steps in total")
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write")
    p.add_argument("--init", type=Path, default=None, help='initial {"model": ...} weights')
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--batch-size", type=int, default=1, help="clips per step (global)")
    p.add_argument("--num-frames", type=int, default=8, help="frames per sampled clip")
    p.add_argument("--max-objects", type=int, default=TrainConfig.max_objects)
    p.add_argument("--image-size", type=int, default=None, help="model input size (px)")
    p.add_argument(
        "--drop-path", type=float, default=None, help="trunk drop-path rate (Meta's recipe: 0.1)"
    )
    p.add_argument("--freeze-image-encoder", action="store_true")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument(
        "--bf16", dest="bf16", action="store_true", default=None, help="bf16 autocast"
    )
    precision.add_argument(
        "--no-bf16", dest="bf16", action="store_false", help="train in float32 (no autocast)"
    )
    p.add_argument("--base-lr", type=float, default=TrainConfig.base_lr)
    p.add_argument("--vision-lr", type=float, default=TrainConfig.vision_lr)
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.set_defaults(func=run_train)


def _device(requested: str | None) -> torch.device:
    kind = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and distributed.launched_world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(kind)


def run_train(args: argparse.Namespace) -> int:
    device = _device(args.device)
    # default: bf16 autocast on CUDA; float32 on CPUs, where bf16 training ran 3-4x slower
    bf16 = device.type == "cuda" if args.bf16 is None else args.bf16
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        num_frames=args.num_frames,
        max_objects=args.max_objects,
        freeze_image_encoder=args.freeze_image_encoder,
        bf16=bf16,
        base_lr=args.base_lr,
        vision_lr=args.vision_lr,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    info = distributed.init_distributed(device.type)
    try:
        clips = load_clips(args.data)
        torch.manual_seed(config.seed)  # same random init on every rank
        model_config = get_config(args.config, args.image_size)
        if args.drop_path is not None:
            trunk = replace(model_config.trunk, drop_path_rate=args.drop_path)
            model_config = replace(model_config, trunk=trunk)
        model = Sam2Model(model_config)
        if args.init is not None:
            load_checkpoint(model, args.init)
        model.to(device)

        def report(stats: StepStats) -> None:
            parts = " ".join(f"{k} {v:.4f}" for k, v in stats.parts.items())
            print(
                f"step {stats.step}/{config.steps} loss {stats.loss:.4f} ({parts}) "
                f"lr {stats.lr:.3g} {stats.seconds:.2f} s",
                flush=True,
            )

        if info.is_main:
            print(
                f"training {args.config} on {len(clips)} clips, {info.world_size} process(es), "
                f"{device}, bf16 {config.bf16}",
                flush=True,
            )
        result = train(
            model, clips, config, checkpoint_path=args.out, resume=args.resume, on_step=report
        )
        if info.is_main:
            print(f"wrote {args.out} after {result.steps_done} steps", flush=True)
    finally:
        distributed.shutdown()
    return 0
