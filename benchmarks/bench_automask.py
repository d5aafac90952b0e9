"""Automatic-mask proposals on one image: one decoder call per point vs batched prompts (CPU).

The job's recipe (32 x 32 grid on the image plus one crop layer of 2 x 2 crops with 16 x 16
points each: 2048 point prompts) runs twice on the same image and model through
`engine.auto_masklets.generate.first_frame_proposals`: once with `decode="per_point"` (the earlier
path: one `ImagePredictor.predict` per point, which upsamples its 3 masks, and one cleanup per
kept mask) and once batched (`decode_batch` with the shared-image decoder, --batch points per
call, upsampling only of masks that pass the IoU filter, the cleanup of a batch's masks at once,
as column runs, in a thread while the model decodes the next batch). It prints the wall and
process CPU time of each, the CPU seconds of its stages (decoder, upsampling, cleanup: those of
the thread that ran the stage, so with several torch threads the model's stages show the calling
thread's share and the rest shows the others), the speed-up, and the IoU between the two paths'
masks for every proposal (matched by prompt point and crop).

With ``--against REF`` the job's proposal code as it stood at git commit REF (its ``engine/``,
``model/``, ``platform/`` and ``tests/`` settings, extracted to a temporary folder) runs the same
recipe on the same image, weights and thresholds in a child process: the issue's "today" is
``--against 5357461^``, the tree before batched prompts, whose per-point path also cleaned each
mask over the whole image and ran its mask NMS over every pair. Its proposals are matched to
the batched ones by prompt point and crop like the per-point path's.

The model is a random test model (default `test_tiny`, 128 px) with permissive thresholds, as a
random model's IoU predictions and logits are low; pass --config/--image-size/--checkpoint for
others (with --permissive, a checkpoint whose IoU head is not calibrated, such as the demo
model's, gets the same thresholds).

    python benchmarks/bench_automask.py
    python benchmarks/bench_automask.py --config test_tiny_256 --batch 64 --height 360 --width 480
    python benchmarks/bench_automask.py --against 5357461^ --skip-per-point
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()  # the auto-masklets module imports the engine's models (no database is used)

from engine.auto_masklets import proposals  # noqa: E402
from engine.auto_masklets.generate import config_from_overrides, first_frame_proposals  # noqa: E402
from engine.auto_masklets.proposals import Proposal  # noqa: E402
from engine.masks.rle import rle_iou_matrix  # noqa: E402
from model.batched import LowResBatch  # noqa: E402
from model.build import build_sam2  # noqa: E402
from model.config import get_config  # noqa: E402
from model.frames import ArrayFrameSource  # noqa: E402
from model.image_predictor import ImagePredictor  # noqa: E402


def make_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (H, W, 3): coloured rectangles and discs on a noisy background."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 40, (height, width, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(12):
        colour = rng.integers(60, 255, 3).astype(np.uint8)
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        r = int(rng.integers(min(height, width) // 16, min(height, width) // 5))
        if rng.random() < 0.5:
            image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = colour
        else:
            image[max(cy - r, 0) : cy + r, max(cx - r, 0) : cx + r] = colour
    return image


def random_model_thresholds(model: object, image: np.ndarray, keep: float) -> dict:
    """Thresholds under which a random model keeps about `keep` of its masks.

    A random model's IoU predictions sit in a narrow band around 0.5 and its logits within a few
    tenths of 0, so SAM's thresholds would keep nothing (and make the IoU comparison empty) or,
    at 0, keep every mask (unlike a trained model, most of whose grid masks fail them). The IoU
    threshold is the (1 - keep) quantile of the model's IoU predictions on a 16 x 16 grid; the
    stability score is measured with a logit offset of 0.05 and not thresholded.
    """
    from engine.auto_masklets.proposals import build_point_grid
    from model.image_predictor import ImagePredictor

    predictor = ImagePredictor(model)
    predictor.set_image(image)
    points = build_point_grid(16) * [image.shape[1], image.shape[0]]
    out = predictor.decode_batch(points[:, None], np.ones((len(points), 1)))
    threshold = float(np.quantile(out.iou_predictions, 1.0 - keep))
    return {
        "pred_iou_thresh": threshold,
        "stability_score_thresh": 0.0,
        "stability_score_offset": 0.05,
    }


STAGES = ("decoder", "upsampling", "cleanup")
CPU = dict.fromkeys(STAGES, 0.0)  # CPU seconds per stage of the current run


def _timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    # the CPU time of the calling thread: the batched path cleans a batch in a thread while
    # the model decodes the next one
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            CPU[stage] += time.thread_time() - start

    return wrapper


# the per-point path's predict includes its upsampling of all 3 masks (as it always did)
ImagePredictor.predict = _timed("decoder", ImagePredictor.predict)  # type: ignore[method-assign]
ImagePredictor.decode_batch = _timed("decoder", ImagePredictor.decode_batch)  # type: ignore[method-assign]
LowResBatch.take = _timed("upsampling", LowResBatch.take)  # type: ignore[method-assign]
proposals.clean_mask = _timed("cleanup", proposals.clean_mask)
proposals.cleaned_in_image = _timed("cleanup", proposals.cleaned_in_image)


def run(
    decode: str, model: object, image: np.ndarray, overrides: dict, repeats: int = 1
) -> tuple[float, float, dict[str, float], list]:
    """(wall seconds, CPU seconds of this process, CPU seconds per stage, proposals) of the
    fastest of ``repeats`` runs (the first pays one-time costs: allocations, kernel set-up)."""
    config = config_from_overrides(overrides)
    runs = []
    for _ in range(repeats):
        CPU.update(dict.fromkeys(STAGES, 0.0))
        start, cpu = time.perf_counter(), time.process_time()
        found = first_frame_proposals(
            model, ArrayFrameSource([image]), config, lambda f, m: None, decode=decode
        )
        runs.append((time.perf_counter() - start, time.process_time() - cpu, dict(CPU), found))
    return min(runs, key=lambda r: r[0])


def describe(name: str, wall: float, cpu: float, stages: dict[str, float], found: list) -> None:
    parts = ", ".join(f"{stage} {stages[stage]:.2f}" for stage in STAGES)
    rest = cpu - sum(stages.values())
    print(
        f"{name:<10} {wall:8.2f} s wall, {cpu:8.2f} s CPU ({parts}, rest {rest:.2f}), "
        f"{len(found)} proposals"
    )


def match(reference: list[Proposal], batched: list[Proposal]) -> list[float]:
    """IoU of each reference proposal with the batched one from the same point and crop (0 if
    the batched path lacks it)."""
    by_key = {(p.point_xy, _crop_key(p.crop_box)): p for p in batched}
    ious = []
    for p in reference:
        other = by_key.get((p.point_xy, _crop_key(p.crop_box)))
        ious.append(0.0 if other is None else float(rle_iou_matrix([p.rle], [other.rle])[0, 0]))
    return ious


# Runs in the child process, inside the extracted tree: the proposals of that tree's code.
_AT_COMMIT = """
import json, os, pickle, sys, time
import numpy as np, torch, django
django.setup()
from engine.auto_masklets.generate import config_from_overrides, first_frame_proposals
from model.build import build_sam2
from model.config import get_config
from model.frames import ArrayFrameSource
args = json.load(open("args.json"))
torch.set_num_threads(args["threads"])
model = build_sam2(get_config(args["config"], args["image_size"]), "weights.pt").eval()
image = np.load("image.npy")
config = config_from_overrides(args["overrides"])
times = []
for _ in range(args["repeats"]):
    start, cpu = time.perf_counter(), time.process_time()
    found = first_frame_proposals(model, ArrayFrameSource([image]), config, lambda f, m: None)
    times.append((time.perf_counter() - start, time.process_time() - cpu))
wall, cpu = min(times)
rows = [(p.point_xy, (p.crop_box.x0, p.crop_box.y0, p.crop_box.x1, p.crop_box.y1,
         p.crop_box.layer), p.rle) for p in found]
pickle.dump({"wall": wall, "cpu": cpu, "proposals": rows}, open("result.pkl", "wb"))
"""


def _crop_key(crop: Any) -> tuple[int, int, int, int, int]:
    return (crop.x0, crop.y0, crop.x1, crop.y1, crop.layer)


def run_at_commit(
    ref: str, model: Any, image: np.ndarray, overrides: dict, args: argparse.Namespace
) -> tuple[float, float, list[Proposal]]:
    """(wall s, CPU s, proposals) of commit ``ref``'s ``first_frame_proposals`` on the same input.

    The proposals come back as ``Proposal``s of this tree with the fields `match` reads.
    """
    archive = subprocess.run(
        ["git", "archive", ref, "engine", "model", "platform", "tests/settings.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        (folder / "tests" / "__init__.py").touch()
        torch.save({"model": model.state_dict()}, folder / "weights.pt")
        np.save(folder / "image.npy", image)
        settings = {
            "config": args.config,
            "image_size": args.image_size,
            "threads": args.threads,
            "repeats": args.repeats,
        }
        (folder / "args.json").write_text(json.dumps({**settings, "overrides": overrides}))
        env = {
            **os.environ,
            "PYTHONPATH": f"{folder}{os.pathsep}{folder / 'platform'}",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        }
        subprocess.run([sys.executable, "-c", _AT_COMMIT], cwd=folder, env=env, check=True)
        result = pickle.loads((folder / "result.pkl").read_bytes())
    found = [
        Proposal(
            rle=rle,
            area=0,
            bbox=(0, 0, 0, 0),
            predicted_iou=0.0,
            stability_score=0.0,
            point_xy=point,
            crop_box=proposals.CropBox(*crop),
        )
        for point, crop, rle in result["proposals"]
    ]
    return result["wall"], result["cpu"], found


def report_match(name: str, reference: list[Proposal], batched: list[Proposal]) -> None:
    ious = match(reference, batched)
    worst = min(ious) if ious else float("nan")
    print(
        f"IoU per proposal, {name} vs batched: min {worst:.4f}, mean "
        f"{np.mean(ious) if ious else float('nan'):.4f}, "
        f"{sum(i >= 0.99 for i in ious)}/{len(ious)} >= 0.99; "
        f"same proposal count: {len(reference) == len(batched)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="test_tiny")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--crop-layers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64, help="points per decoder call")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs per path; the fastest is reported"
    )
    parser.add_argument(
        "--min-region-area", type=int, default=100, help="hole/speck cleanup (the job's 100)"
    )
    parser.add_argument(
        "--keep-fraction",
        type=float,
        default=0.1,
        help="random models (or --permissive): share of masks whose predicted IoU passes",
    )
    parser.add_argument(
        "--permissive",
        action="store_true",
        help="a checkpoint's thresholds set as a random model's (its own IoU predictions)",
    )
    parser.add_argument("--against", help="a git commit whose proposal code to time as well")
    parser.add_argument(
        "--skip-per-point", action="store_true", help="do not time this tree's per-point path"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_sam2(get_config(args.config, args.image_size), args.checkpoint).eval()
    image = make_image(args.height, args.width)
    overrides = {
        "points_per_side": args.points_per_side,
        "points_per_batch": args.batch,
        "crop_n_layers": args.crop_layers,
        "crop_n_points_downscale_factor": 2,
        "pred_iou_thresh": 0.88,  # SAM 2's automatic mask generator defaults
        "stability_score_thresh": 0.95,
        "stability_score_offset": 1.0,
        "min_region_area": args.min_region_area,
        "min_mask_area": 100,
        "non_overlapping": False,
        "max_objects": 512,
    }
    if args.checkpoint is None or args.permissive:
        overrides.update(random_model_thresholds(model, image, args.keep_fraction))
    config = config_from_overrides(overrides).proposals
    grids = 1 + (4 if args.crop_layers >= 1 else 0) / 4
    print(
        f"model {args.config} (image size {model.image_size}), image {args.height}x{args.width}, "
        f"{args.points_per_side}x{args.points_per_side} grid + {args.crop_layers} crop layer(s) "
        f"(~{int(config.points_per_side**2 * grids)} point prompts), batch {args.batch}, "
        f"{args.threads} thread(s), fastest of {args.repeats} run(s) per path"
    )
    t_batched, cpu_batched, stages_batched, batched = run(
        "batched", model, image, overrides, args.repeats
    )
    describe("batched:", t_batched, cpu_batched, stages_batched, batched)
    if not args.skip_per_point:
        t_single, cpu_single, stages_single, single = run(
            "per_point", model, image, overrides, args.repeats
        )
        describe("per point:", t_single, cpu_single, stages_single, single)
        decoder_single, decoder_batched = stages_single["decoder"], stages_batched["decoder"]
        print(
            f"speed-up: {t_single / t_batched:.1f}x wall, {cpu_single / cpu_batched:.1f}x CPU; "
            f"decoder {decoder_single / decoder_batched:.1f}x, everything else "
            f"{(cpu_single - decoder_single) / (cpu_batched - decoder_batched):.1f}x"
        )
        report_match("per point", single, batched)
    if args.against:
        t_then, cpu_then, then = run_at_commit(args.against, model, image, overrides, args)
        print(
            f"{args.against}: {t_then:8.2f} s wall, {cpu_then:8.2f} s CPU, {len(then)} proposals; "
            f"speed-up of batched: {t_then / t_batched:.1f}x wall, {cpu_then / cpu_batched:.1f}x "
            f"CPU (target >= 8x)"
        )
        report_match(args.against, then, batched)


if __name__ == "__main__":
    main()
