"""Export benchmark through the database and the export job: bounded memory, masks per second.

Builds N masklets of F frames each in a fresh SQLite database (videos of ``--per-video`` masklets,
created through ``engine.masklets.revisions.do_create_masklet``, verified), then for each format
runs the real job path (``do_start_export`` -> snapshot -> ``run_export_job`` -> zip in storage)
and prints masks per second and the peak memory of the export: the process' peak RSS above its
level before the export (VmHWM reset just before) and, in a second run under
tracemalloc, the peak of Python allocations. Each N runs in a fresh subprocess so RSS peaks do not
mask each other. A bound that is fixed shows as equal peaks for N = 100 and N = 1000 (the export
holds one video's RLEs at a time, so the bound scales with ``--per-video``, not with N). DAVIS
adds ~0.5 KiB per zip member (zipfile keeps the central directory until the end; one PNG per
annotated frame), so its peak grows by ~4.5 MiB per 10,000 annotated frames; SA-V and COCO zips
have a handful of members. The synthetic masks cycle through a pool of 97 RLEs, so the zips
compress far better than real data would.

    .venv/bin/python benchmarks/bench_export_db.py                      # N = 100 and 1000, F = 100
    .venv/bin/python benchmarks/bench_export_db.py --masklets 1000 --formats sav
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POOL_SIZE = 97


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def child(
    n_masklets: int, n_frames: int, per_video: int, hw: tuple[int, int], formats: list[str]
) -> dict[str, object]:
    import django

    for p in (str(REPO / "platform"), str(REPO)):
        sys.path.insert(0, p)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataengine.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # settings refuse none
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import numpy as np

    from engine.accounts.projects import do_create_project, do_create_user
    from engine.datasets.export import do_start_export, run_export_job
    from engine.masklets.revisions import FrameMask, do_create_masklet
    from engine.masks.rle import encode_rle
    from engine.models import Job, Video

    height, width = hw
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width]
    pool = []
    for _ in range(POOL_SIZE):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(10, height / 5), rng.uniform(10, width / 5)
        pool.append(encode_rle(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1))
    user = do_create_user("bench", "bench-pass", "manager")
    project = do_create_project("bench", user)
    start = time.perf_counter()
    made = 0
    while made < n_masklets:
        video = Video.objects.create(
            project=project,
            name=f"v{made // per_video:05d}.mp4",
            width=width,
            height=height,
            frame_count=n_frames,
            status="ready",
            metadata={"has_frames": False},
        )
        for _ in range(min(per_video, n_masklets - made)):
            frames = {
                t: FrameMask(pool[(made * 31 + t) % POOL_SIZE], "propagated")
                for t in range(n_frames)
            }
            do_create_masklet(video, author=user, frames=frames, status="verified")
            made += 1
    build_s = time.perf_counter() - start
    results: dict[str, object] = {"build_s": round(build_s, 1)}
    for fmt in formats:
        timings = {}
        for traced in (False, True):
            job = do_start_export(project, user=user, fmt=fmt)
            rss_before = _status_mib("VmRSS")
            _reset_peak_rss()
            if traced:
                tracemalloc.start()
            t0 = time.perf_counter()
            run_export_job(job.pk)
            seconds = time.perf_counter() - t0
            job.refresh_from_db()
            assert job.status == Job.Status.SUCCEEDED, job.error
            if traced:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                timings["tracemalloc_peak_mib"] = round(peak / 2**20, 1)
            else:
                timings.update(
                    seconds=round(seconds, 2),
                    masks=job.result["masks"],
                    masks_per_s=round(job.result["masks"] / seconds),
                    zip_mib=round(job.result["bytes"] / 2**20, 1),
                    rss_before_mib=round(rss_before, 1),
                    rss_peak_above_before_mib=round(_status_mib("VmHWM") - rss_before, 1),
                )
        results[fmt] = timings
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--masklets", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--per-video", type=int, default=10)
    parser.add_argument("--size", default="640x360", help="W x H of the masks")
    parser.add_argument("--formats", default="sav,coco,davis")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    formats = args.formats.split(",")
    if args.child:
        print(
            json.dumps(
                child(args.masklets[0], args.frames, args.per_video, (height, width), formats)
            )
        )
        return
    print(
        f"{args.frames} frames per masklet, {args.per_video} masklets per video, "
        f"masks {width}x{height}, job path with zip into local storage"
    )
    for n in args.masklets:
        with tempfile.TemporaryDirectory(prefix="bench-export-db-") as tmp:
            env = {
                **os.environ,
                "DATA_DIR": tmp,
                "CELERY_BROKER_URL": "memory://",
                "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            }
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--masklets",
                    str(n),
                    "--frames",
                    str(args.frames),
                    "--per-video",
                    str(args.per_video),
                    "--size",
                    args.size,
                    "--formats",
                    args.formats,
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"N = {n} masklets ({n * args.frames:,} masks; DB built in {result['build_s']} s)")
        for fmt in formats:
            r = result[fmt]
            assert isinstance(r, dict)
            print(
                f"  {fmt:5s} {r['seconds']:7.2f} s  {r['masks_per_s']:>7,} masks/s  "
                f"zip {r['zip_mib']:6.1f} MiB  peak RSS +{r['rss_peak_above_before_mib']:.1f} MiB"
                f" (base {r['rss_before_mib']:.0f} MiB)  tracemalloc peak "
                f"{r['tracemalloc_peak_mib']:.1f} MiB"
            )


if __name__ == "__main__":
    main()
