"""J&F with and without a memory-selection policy: same checkpoint, same videos, same prompts.

Videos: occlusion-heavy procedural clips (`engine.simulation.procedural`, objects vanish behind
others and leave the frame and come back) with exact ground truth. Each object is prompted with
its ground-truth mask on the first frame where it is visible (the semi-supervised VOS setting)
and tracked forward in one session per video; J&F (`engine.metrics.scores.evaluate_masklet`,
first and last frames skipped) is averaged per video, then over videos. The same run is repeated
for each policy with the same model and prompts; the paired per-video difference is printed.

    python benchmarks/bench_memory_policy.py --checkpoint round3.pt --config sam2.1_hiera_t \
        --image-size 512 --videos 16
    python benchmarks/bench_memory_policy.py          # random test model: a smoke run only

Without --checkpoint the weights are random, so the figures say nothing about the policy.
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

from engine.metrics.scores import evaluate_masklet  # noqa: E402
from engine.simulation.procedural import ProceduralSpec, make_videos  # noqa: E402
from model.build import build_sam2  # noqa: E402
from model.config import get_config  # noqa: E402
from model.frames import ArrayFrameSource  # noqa: E402
from model.memory_policy import MemoryPolicy  # noqa: E402
from model.video_predictor import VideoPredictor  # noqa: E402


def video_jf(predictor: VideoPredictor, frames: np.ndarray, masks: np.ndarray) -> float | None:
    """Mean J&F over the objects of one clip (None if no object can be scored)."""
    num_objects, num_frames = masks.shape[:2]
    session = predictor.start_session(ArrayFrameSource(list(frames)))
    starts = {}
    try:
        for o in range(num_objects):
            visible = np.flatnonzero(masks[o].any(axis=(1, 2)))
            if visible.size and visible[0] < num_frames - 2:
                starts[o] = int(visible[0])
        if not starts:
            return None
        first = min(starts.values())
        for o, t in starts.items():
            if t == first:
                session.add_mask(t, o, masks[o, t])
        pred: dict[int, dict[int, np.ndarray]] = {o: {} for o in starts}
        for result in session.propagate(first):
            for index, obj_id in enumerate(result.obj_ids):
                pred[obj_id][result.frame_idx] = result.logits[index, 0].numpy() > 0
            # objects first visible later are prompted when their frame comes (never tracked)
        scores = []
        for o, t in starts.items():
            if t != first:
                continue
            gt = {i: masks[o, i] for i in range(t, num_frames)}
            scores.append(evaluate_masklet(pred[o], gt, object_id=str(o)).j_and_f)
        return float(np.mean(scores)) if scores else None
    finally:
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a model trained by the rounds")
    parser.add_argument("--config", default="test_tiny")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=32, help="frames per clip")
    parser.add_argument("--size", type=int, default=128, help="clip height and width")
    parser.add_argument("--min-iou", type=float, default=MemoryPolicy.min_iou)
    parser.add_argument("--min-object-score", type=float, default=MemoryPolicy.min_object_score)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_sam2(
        get_config(args.config, args.image_size), args.checkpoint, device=args.device
    ).eval()
    if args.checkpoint is None:
        print("NO CHECKPOINT: random weights, a smoke run; the J&F figures mean nothing")
    spec = ProceduralSpec.occlusion_heavy(num_frames=args.frames, height=args.size, width=args.size)
    videos = make_videos(args.first_seed, args.videos, spec)
    policies = {
        "all (SAM 2.1)": MemoryPolicy(),
        "reliable": MemoryPolicy(
            name="reliable", min_iou=args.min_iou, min_object_score=args.min_object_score
        ),
    }
    print(
        f"model {args.config} ({args.checkpoint or 'random'}), image size {model.image_size}, "
        f"{args.videos} occlusion-heavy clips of {args.frames} frames at {args.size} px, "
        f"seeds {args.first_seed}.., mask prompt on each object's first visible frame"
    )
    per_policy: dict[str, list[float]] = {}
    for name, policy in policies.items():
        # the official evaluation setting: no post-processing
        predictor = VideoPredictor(
            model,
            apply_postprocessing=False,
            dtype=args.dtype,
            memory_policy=policy,
            spill_evicted=False,
            feature_cache_size=8,
        )
        start = time.perf_counter()
        scores = [video_jf(predictor, v.frames, v.masks) for v in videos]
        per_policy[name] = [s for s in scores if s is not None]
        print(
            f"{name:14s} J&F {100 * np.mean(per_policy[name]):6.2f}  "
            f"({len(per_policy[name])} videos, {time.perf_counter() - start:.1f} s)"
        )
    base, cand = (np.array(v) for v in per_policy.values())
    diff = 100 * (cand - base)
    print(
        f"reliable - all: {diff.mean():+.2f} J&F points (per video: "
        f"{', '.join(f'{d:+.1f}' for d in diff)}); "
        f"wins {int((diff > 0).sum())}, losses {int((diff < 0).sum())}"
    )


if __name__ == "__main__":
    main()
