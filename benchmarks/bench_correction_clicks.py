"""Correction clicks on tracked frames: the first click on a frame against the next ones.

A bare ``VideoSession`` (random weights, ``--config`` at ``--image-size``) tracks one object
over ``--frames`` synthetic frames, then takes ``--clicks`` clicks on each of ``--tracked``
tracked frames. A correction runs the memory attention (seconds on CPU at 1024 px); the next
clicks on the same frame find its result in the model's memo (``model.memo``) when it is on.
Prints the median milliseconds of first and further clicks, with the memo and without, and
whether both gave the same masks.

    python benchmarks/bench_correction_clicks.py                     # hiera_t at 1024
    python benchmarks/bench_correction_clicks.py --config test_tiny --image-size 128
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.build import build_sam2  # noqa: E402
from model.config import get_config  # noqa: E402
from model.frames import ArrayFrameSource  # noqa: E402
from model.sam2_base import Sam2Model  # noqa: E402
from model.video_predictor import VideoSession  # noqa: E402


def frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """A bright box moving over noise."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        image = rng.integers(0, 60, (height, width, 3)).astype(np.uint8)
        x = 40 + 12 * i
        image[height // 3 : height // 3 + 120, x : x + 160] = (230, 200, 40)
        out.append(image)
    return out


def run(model: Sam2Model, clip: list[np.ndarray], tracked: list[int], clicks: int) -> tuple:
    """(first-click ms, further-click ms, masks after every click)."""
    first: list[float] = []
    further: list[float] = []
    masks: list[torch.Tensor] = []
    with VideoSession(model, ArrayFrameSource(clip)) as session:
        h = clip[0].shape[0]
        session.add_points(0, 1, [[100, h // 3 + 60]], [1])
        for _ in session.propagate():
            pass
        for t in tracked:
            points: list[list[float]] = []
            for k in range(clicks):
                points.append([60.0 + 12 * t + 30 * k, h / 3 + 20 + 25 * k])
                labels = [1 - j % 2 for j in range(k + 1)]  # positive, negative, ...
                began = time.perf_counter()
                result = session.add_points(t, 1, points, labels)
                (further if k else first).append(1000 * (time.perf_counter() - began))
                masks.append(result.logits.clone())
    return first, further, masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--tracked", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_sam2(get_config(args.config, args.image_size))
    clip = frames(args.frames, 854, 480)
    memo = model.memory_memo
    with_memo = run(model, clip, args.tracked, args.clicks)
    model.memory_memo = None
    without = run(model, clip, args.tracked, args.clicks)
    model.memory_memo = memo
    for label, (first, further, _) in (("memo on ", with_memo), ("memo off", without)):
        print(
            f"{label}: first click on a tracked frame median {statistics.median(first):8.1f} ms, "
            f"further clicks median {statistics.median(further):8.1f} ms "
            f"({len(first)} + {len(further)} clicks; {args.config} at {args.image_size})"
        )
    same = all(torch.equal(a, b) for a, b in zip(with_memo[2], without[2], strict=True))
    print(f"same masks with and without the memo: {same}")


if __name__ == "__main__":
    main()
