"""Procedural clips and the model evaluation protocol: how long each takes (CPU by default).

1. Generator: seconds per clip of ``engine.simulation.procedural.make_video`` for the default
   spec (24 x 128 x 128, 3 objects), the ``occlusion_heavy`` spec (64 frames, 4 objects) and a
   256-px clip, over ``--clips`` seeds each.
2. Protocol: ``engine.simulation.protocol.evaluate_model`` on ``--videos`` default clips with a
   model (random ``test_tiny`` unless ``--checkpoint``): seconds per video with the objects of a
   video sharing one session, then with one object per session (each object evaluated as a
   video of its own), and whether both give the same scores.

    python benchmarks/bench_protocol.py
    python benchmarks/bench_protocol.py --videos 8 --config test_tiny --checkpoint demo.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from engine.simulation.procedural import ProceduralSpec, make_video, make_videos  # noqa: E402
from engine.simulation.protocol import EvalConfig, evaluate_model  # noqa: E402
from model.build import build_sam2  # noqa: E402


def bench_generator(clips: int) -> None:
    specs = {
        "default 24x128x128, 3 objects": ProceduralSpec(),
        "occlusion_heavy 64x128x128, 4 objects": ProceduralSpec.occlusion_heavy(),
        "24x256x256, 3 objects": ProceduralSpec(height=256, width=256),
    }
    print("| clip | s/clip (mean) | s/clip (max) |")
    print("|---|---|---|")
    for label, spec in specs.items():
        make_video(10_000, spec)  # warm-up
        times = []
        for seed in range(clips):
            start = time.perf_counter()
            make_video(seed, spec)
            times.append(time.perf_counter() - start)
        print(f"| {label} | {np.mean(times):.3f} | {np.max(times):.3f} |")


def bench_protocol(videos: int, config_name: str, checkpoint: str | None, device: str) -> None:
    torch.manual_seed(0)
    model = build_sam2(config_name, checkpoint, device=device)
    clips = [(v.frames, v.masks) for v in make_videos(0, videos, ProceduralSpec())]
    config = EvalConfig()

    start = time.perf_counter()
    shared = evaluate_model(model, clips, config, device=device)
    shared_s = time.perf_counter() - start

    start = time.perf_counter()
    alone = [
        evaluate_model(model, [(frames, masks[o : o + 1])], config, device=device)
        for frames, masks in clips
        for o in range(masks.shape[0])
    ]
    alone_s = time.perf_counter() - start

    per_object = [a.per_video[0] for a in alone]
    counts = [v.num_objects for v in shared.per_video]
    offsets = np.cumsum([0, *counts])
    worst = 0.0
    for i, video in enumerate(shared.per_video):
        objects = per_object[offsets[i] : offsets[i + 1]]
        for k, value in video.jf_after_clicks.items():
            worst = max(worst, abs(value - float(np.mean([o.jf_after_clicks[k] for o in objects]))))
        worst = max(
            worst, abs(video.jf_from_mask - float(np.mean([o.jf_from_mask for o in objects])))
        )
    print(f"\nmodel {config_name} ({'random' if checkpoint is None else checkpoint}) on {device}")
    print(f"{videos} videos, {sum(counts)} objects; {config}")
    print("| sessions | s/video | total s |")
    print("|---|---|---|")
    print(f"| one per video (shared) | {shared_s / videos:.2f} | {shared_s:.1f} |")
    print(f"| one per object | {alone_s / videos:.2f} | {alone_s:.1f} |")
    print(f"largest |shared - alone| of a video's J&F: {worst:.2e}")
    print("summary:", {k: round(v, 4) for k, v in shared.summary().items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=10, help="clips per generator spec")
    parser.add_argument("--videos", type=int, default=4, help="videos for the protocol")
    parser.add_argument("--config", default="test_tiny")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    bench_generator(args.clips)
    bench_protocol(args.videos, args.config, args.checkpoint, args.device)


if __name__ == "__main__":
    main()
