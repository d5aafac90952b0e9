"""Training speed on the CPU: seconds per optimiser step and the loss curve's ends.

For each model config (default test_tiny and demo_small) a randomly initialised model trains on
synthetic clips (textured discs moving over noise, `model.training.synthetic`) at the config's
image size with the SAM 2 recipe (`model.training`), one process, float32 unless --bf16.

    python benchmarks/bench_training.py                           # test_tiny, demo_small
    python benchmarks/bench_training.py --configs demo_small --steps 20 --frames 4 8 --threads 2

Prints, per (config, frames): median and mean wall seconds per step, the median CPU seconds of
this process per step (with --threads 1 on a shared machine, the figure that does not depend on
the load; the first step, which warms up allocators, is left out), the mean loss of the first
and of the last 5 steps, and the first/last loss values. Loss values mix prompt types (GT-mask
prompts give small losses, points with 7 correction clicks large ones): single steps are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.config import get_config  # noqa: E402
from model.sam2_base import Sam2Model  # noqa: E402
from model.training.config import TrainConfig  # noqa: E402
from model.training.loop import StepStats, train  # noqa: E402
from model.training.synthetic import moving_discs_clips  # noqa: E402


def bench(name: str, steps: int, frames: int, clips: int, bf16: bool, lr: float) -> dict:
    config = get_config(name)
    torch.manual_seed(0)
    model = Sam2Model(config)
    data = moving_discs_clips(clips, seed=0, num_frames=max(frames, 8), size=config.image_size)
    train_config = TrainConfig(steps=steps, num_frames=frames, bf16=bf16, base_lr=lr, vision_lr=lr)
    stats: list[StepStats] = []
    cpu_marks = [time.process_time()]

    def record(step: StepStats) -> None:
        stats.append(step)
        cpu_marks.append(time.process_time())

    began = time.perf_counter()
    train(model, data, train_config, on_step=record)
    wall = time.perf_counter() - began
    seconds = [s.seconds for s in stats[1:]] or [stats[0].seconds]
    cpu = [b - a for a, b in zip(cpu_marks[1:-1], cpu_marks[2:])] or [cpu_marks[1] - cpu_marks[0]]
    losses = [s.loss for s in stats]
    head, tail = losses[: min(5, len(losses))], losses[-min(5, len(losses)) :]
    return {
        "config": name,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "frames": frames,
        "median_s_per_step": statistics.median(seconds),
        "mean_s_per_step": statistics.fmean(seconds),
        "median_cpu_s_per_step": statistics.median(cpu),
        "wall_s": wall,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_first5_mean": statistics.fmean(head),
        "loss_last5_mean": statistics.fmean(tail),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["test_tiny", "demo_small"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--frames", type=int, nargs="+", default=[8])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (slow on most CPUs)")
    parser.add_argument("--lr", type=float, default=1e-4, help="base and vision lr")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), bf16 {args.bf16}")
    for name in args.configs:
        for frames in args.frames:
            r = bench(name, args.steps, frames, args.clips, args.bf16, args.lr)
            print(
                f"{r['config']:<12} {r['params_M']:5.1f} M params, {frames} frames: "
                f"{r['median_s_per_step']:.2f} s/step median ({r['mean_s_per_step']:.2f} mean, "
                f"{r['median_cpu_s_per_step']:.2f} CPU s, {r['wall_s']:.0f} s for {args.steps} "
                f"steps); loss first {r['loss_first']:.2f} "
                f"last {r['loss_last']:.2f}, mean of first 5 {r['loss_first5_mean']:.2f} "
                f"last 5 {r['loss_last5_mean']:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
