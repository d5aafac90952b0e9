"""Streaming export benchmark: SA-V and COCO writers over many synthetic masklets.

Exports N masklets x F frames (masklets grouped into videos of ``--per-video`` objects, one SA-V
file per video as in SA-V, one COCO file for everything) and prints, per N, the masks per second
and the peak memory: tracemalloc's peak of Python allocations during the export, and the process'
peak RSS (each N runs in a fresh subprocess so the RSS peaks do not mask each other).

Masks are COCO RLEs, as the database stores them; a pool of distinct synthetic ellipse masks is
encoded once before timing (its memory is outside the measurement), and the cost of encoding raw
masks is printed separately.

    .venv/bin/python benchmarks/bench_export.py                 # N = 100 and 1000, F = 100
    .venv/bin/python benchmarks/bench_export.py --masklets 100 1000 2000 --frames 50
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.datasets.formats.coco import CocoCategory, CocoVideo, CocoWriter  # noqa: E402
from engine.datasets.formats.sav import SavVideo, SavWriter  # noqa: E402
from engine.masks.rle import Rle, encode_rle  # noqa: E402

POOL_SIZE = 97  # prime, so masklet/frame pairs cycle through the pool unevenly


def make_mask_pool(height: int, width: int, size: int) -> list[Rle]:
    """``size`` RLEs of ellipses of varied centre and radii (about 1-5 % of the frame)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width]
    pool = []
    for _ in range(size):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(20, height / 5), rng.uniform(20, width / 5)
        pool.append(encode_rle(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1))
    return pool


def _proc_status_mib(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MiB (Linux). Unlike ``ru_maxrss``, the high-water
    mark starts fresh at exec, so a child does not report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Restart the VmHWM high-water mark here (Linux: "5" to clear_refs), so the peak printed
    belongs to the export, not to building the mask pool."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def export(n_masklets: int, n_frames: int, per_video: int, hw: tuple[int, int], out: Path) -> dict:
    height, width = hw
    pool = make_mask_pool(height, width, POOL_SIZE)
    n_videos = -(-n_masklets // per_video)
    rss_before = _proc_status_mib("VmRSS")
    _reset_peak_rss()
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    masks_written = 0
    with open(out / "coco.json", "w", encoding="utf-8") as coco_stream:
        coco = CocoWriter(coco_stream, [CocoCategory(1, "object")])
        for v in range(n_videos):
            ids = list(range(v * per_video, min((v + 1) * per_video, n_masklets)))
            video = SavVideo(f"vid_{v:06d}", n_frames / 6, n_frames * 4, height, width)
            coco.add_video(CocoVideo(v, video.video_id, height, width, n_frames))
            with open(out / f"{video.video_id}_manual.json", "w", encoding="utf-8") as sav_stream:
                sav = SavWriter(sav_stream, video, ids, "manual")
                for t in range(n_frames):
                    row = [pool[(k * 31 + t) % POOL_SIZE] for k in ids]
                    sav.write_frame(row)
                    image_id = coco.add_image(
                        video_id=v,
                        frame_index=4 * t,
                        file_name=f"{video.video_id}/{4 * t:05d}.jpg",
                        height=height,
                        width=width,
                    )
                    for k, rle in zip(ids, row):
                        coco.add_annotation(image_id=image_id, track_id=k, category_id=1, mask=rle)
                    masks_written += len(row)
                sav.close([0] * len(ids))
        coco.close()
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bytes_out = sum(p.stat().st_size for p in out.iterdir())
    return {
        "masklets": n_masklets,
        "frames": n_frames,
        "videos": n_videos,
        "masks": masks_written,
        "seconds": seconds,
        "masks_per_s": masks_written / seconds,
        "tracemalloc_peak_mib": traced_peak / 2**20,
        "rss_before_mib": rss_before,
        "peak_rss_mib": _proc_status_mib("VmHWM"),
        "output_mib": bytes_out / 2**20,
    }


def encode_rate(hw: tuple[int, int], n: int = 200) -> float:
    """Raw ``[H, W]`` bool masks encoded per second (the step before the writers)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    masks = [
        ((yy - rng.uniform(0, hw[0])) / 60) ** 2 + ((xx - rng.uniform(0, hw[1])) / 90) ** 2 <= 1
        for _ in range(n)
    ]
    start = time.perf_counter()
    for mask in masks:
        encode_rle(mask)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masklets", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--per-video", type=int, default=10)
    parser.add_argument("--hw", type=int, nargs=2, default=[480, 854], metavar=("H", "W"))
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    hw = (args.hw[0], args.hw[1])

    if args.single is not None:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(export(args.single, args.frames, args.per_video, hw, Path(tmp))))
        return

    print(f"frames/masklet={args.frames}  masklets/video={args.per_video}  H x W={hw[0]}x{hw[1]}")
    header = f"{'masklets':>9} {'masks':>8} {'s':>7} {'masks/s':>9} {'tracemalloc MiB':>16}"
    print(header + f" {'RSS before MiB':>15} {'peak RSS MiB':>13} {'output MiB':>11}")
    for n in args.masklets:
        cmd = [
            sys.executable,
            __file__,
            "--single",
            str(n),
            "--frames",
            str(args.frames),
            "--per-video",
            str(args.per_video),
            "--hw",
            str(hw[0]),
            str(hw[1]),
        ]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(
            f"{result['masklets']:>9} {result['masks']:>8} {result['seconds']:>7.2f} "
            f"{result['masks_per_s']:>9,.0f} {result['tracemalloc_peak_mib']:>16.2f} "
            f"{result['rss_before_mib']:>15.1f} {result['peak_rss_mib']:>13.1f} "
            f"{result['output_mib']:>11.1f}"
        )
    # Last, so its arrays do not inflate anything above.
    print(f"encode_rle of raw masks: {encode_rate(hw):,.0f} masks/s (not included above)")


if __name__ == "__main__":
    main()
