"""Faults: SIGKILL the Celery worker at random points while it ingests videos and exports the
dataset, again and again (adding work whenever all of it has ended), then let a worker run
undisturbed and check that every job ended (succeeded, or failed with its reason after its
attempts) and that the outputs are complete and not doubled: each video's frames in storage
are exactly its frame count, each export zip is whole and the same as the others, no stray
objects.

    python benchmarks/bench_faults.py --kills 20

Runs on a temporary SQLite database and local storage (``--database-url`` for PostgreSQL), with
a real worker (``celery -A workers worker -B``, recovery beat every 5 s, jobs stale after 10 s)
on Redis database 8 (``--broker``), which it flushes first. Propagation, automatic masklets and
training rounds need a SAM 2 model in the worker and are not covered here yet.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
TERMINAL = ("succeeded", "failed", "cancelled")


def _configure(data_dir: str, broker: str, database_url: str, max_attempts: int) -> dict[str, str]:
    env = {
        "PYTHONPATH": f"{REPO}:{REPO / 'platform'}",
        "DJANGO_SETTINGS_MODULE": "dataengine.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATA_DIR": data_dir,
        "CELERY_BROKER_URL": broker,
        "JOB_STALE_SECONDS": "10",
        "JOB_RECOVERY_INTERVAL_SECONDS": "5",
        "JOB_MAX_ATTEMPTS": str(max_attempts),
        "LOG_LEVEL": "warning",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    os.environ.update(env)
    os.environ.pop("DEMO_MODE", None)
    if not database_url:
        os.environ.pop("DATABASE_URL", None)
    return {**os.environ}


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "-B",
         "-Q", "default,interactive,propagate,train", "--pool", "solo", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
         "--schedule", str(Path(env["DATA_DIR"]) / "beat-schedule")],
        cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _pending(job_ids: list[int]) -> int:
    from engine.models import Job

    return Job.objects.filter(pk__in=job_ids).exclude(status__in=TERMINAL).count()


def chaos(
    env: dict[str, str],
    job_ids: list[int],
    kills: int,
    delays: tuple[float, float],
    log: Path,
    more_work: Callable[[], list[int]],
) -> tuple[int, int]:
    """``kills`` times: start a worker, wait until it has claimed a job, SIGKILL it after a
    random delay; when every job has ended, ``more_work()`` adds jobs (their ids join
    ``job_ids``). Returns (kills, kills while a job was running)."""
    from django.utils import timezone

    from engine.models import Job

    made = during = 0
    for _ in range(kills):
        if not _pending(job_ids):
            job_ids += more_work()
        started = timezone.now()
        worker = _start_worker(env, log)
        mine = Job.objects.filter(pk__in=job_ids, status="running", heartbeat_at__gte=started)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _pending(job_ids) and not mine.exists():
            time.sleep(0.1)
        time.sleep(random.uniform(*delays))
        during += int(mine.exists())
        _kill(worker)
        made += 1
    return made, during


def settle(env: dict[str, str], job_ids: list[int], timeout: float, log: Path) -> float:
    """One undisturbed worker until every job has ended; seconds it took."""
    started = time.monotonic()
    worker = _start_worker(env, log)
    try:
        while _pending(job_ids) and time.monotonic() - started < timeout:
            time.sleep(1)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill(worker)
    return time.monotonic() - started


def _jobs_line(job_ids: list[int]) -> tuple[str, bool]:
    from engine.models import Job

    jobs = list(Job.objects.filter(pk__in=job_ids))
    by_status: dict[str, int] = {}
    for job in jobs:
        by_status[job.status] = by_status.get(job.status, 0) + 1
    attempts = sum(job.attempt for job in jobs)
    unexplained = [j.pk for j in jobs if j.status == "failed" and not j.error]
    reasons = sorted({j.error for j in jobs if j.status == "failed" and j.error})
    ok = all(j.status in TERMINAL for j in jobs) and not unexplained
    line = f"jobs {by_status}, attempts {attempts}, failed without a reason {unexplained}"
    return line + (f", reasons {reasons}" if reasons else ""), ok


def check_ingest(video_ids: list[int]) -> tuple[str, bool]:
    from django.conf import settings

    from engine.models import Video

    media = Path(settings.MEDIA_ROOT)
    wrong = []
    frames_total = 0
    for video in Video.objects.filter(pk__in=video_ids):
        stored = sorted((media / "videos" / str(video.pk) / "frames").glob("*.jpg"))
        frames_total += len(stored)
        expected = [f"{i:06d}.jpg" for i in range(video.frame_count)]
        if video.status != "ready" or [p.name for p in stored] != expected:
            wrong.append((video.pk, video.status, video.frame_count, len(stored)))
    line = f"videos {len(video_ids)}, frames stored {frames_total}, wrong {wrong}"
    return line, not wrong


def check_exports(job_ids: list[int]) -> tuple[str, bool]:
    from django.conf import settings

    from engine.models import Job

    media = Path(settings.MEDIA_ROOT)
    contents, wrong = set(), []
    for job in Job.objects.filter(pk__in=job_ids):
        key = job.result.get("key", "")
        path = media / key
        if job.status != "succeeded" or not key or not path.exists():
            wrong.append((job.pk, job.status, key))
            continue
        with zipfile.ZipFile(path) as zf:
            if zf.testzip() is not None:
                wrong.append((job.pk, "corrupt zip", key))
            contents.add(tuple(sorted((i.filename, i.CRC) for i in zf.infolist())))
    zips = sorted(p.name for p in media.rglob("*.zip"))
    stray = len(zips) - len(job_ids)
    ok = not wrong and len(contents) == 1 and stray == 0
    line = (
        f"exports {len(job_ids)}, zips in storage {len(zips)}, distinct contents {len(contents)}, "
        f"wrong {wrong}"
    )
    return line, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per phase")
    parser.add_argument(
        "--videos", type=int, default=2, help="at first; one more whenever all ended"
    )
    parser.add_argument(
        "--exports", type=int, default=2, help="at first; one more whenever all ended"
    )
    parser.add_argument(
        "--delay",
        type=float,
        nargs=2,
        default=(0.0, 3.0),
        metavar=("MIN", "MAX"),
        help="seconds between the worker claiming a job and its SIGKILL",
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--timeout", type=float, default=600.0, help="for the final worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=100,
        help="JOB_MAX_ATTEMPTS of the worker (the default 3 makes a job killed 3 times fail)",
    )
    args = parser.parse_args()
    random.seed(args.seed)

    import redis

    redis.Redis.from_url(args.broker).flushdb()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as data_dir:
        env = _configure(data_dir, args.broker, args.database_url, args.max_attempts)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True
        )
        import django

        django.setup()
        from django.db import transaction

        from engine.accounts.projects import do_create_project, do_create_user
        from engine.datasets.export import do_start_export
        from engine.models import Job
        from engine.videos.ingest import do_upload_video

        log = Path(data_dir) / "worker.log"
        boss = do_create_user("faults-manager", "pass-manager-1", "manager")
        project = do_create_project("faults", boss, annotation_fps=12.0)
        clips = Path(data_dir) / "clips"
        clips.mkdir()
        video_ids: list[int] = []

        def upload() -> list[int]:
            n = len(video_ids)
            clip = clips / f"clip{n}.mp4"
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                 f"testsrc=duration={4 + n % 4}:size=320x240:rate=24", "-c:v", "libx264",
                 "-pix_fmt", "yuv420p", str(clip)],
                check=True,
            )  # fmt: skip
            with transaction.atomic(), clip.open("rb") as f:
                video = do_upload_video(project, boss, clip.name, f, clip.stat().st_size)
            video_ids.append(video.pk)
            return list(Job.objects.filter(video=video, kind="ingest").values_list("pk", flat=True))

        def export() -> list[int]:
            with transaction.atomic():
                return [do_start_export(project, user=boss, fmt="davis").pk]

        ingest_jobs = [job for _ in range(args.videos) for job in upload()]
        results: list[tuple[str, bool]] = []

        kills, during = chaos(env, ingest_jobs, args.kills, tuple(args.delay), log, upload)
        seconds = settle(env, ingest_jobs, args.timeout, log)
        jobs, jobs_ok = _jobs_line(ingest_jobs)
        outputs, outputs_ok = check_ingest(video_ids)
        print(
            f"ingest: {kills} SIGKILLs ({during} while a job ran), settled in {seconds:.0f} s; "
            f"{jobs}; {outputs}",
            flush=True,
        )
        results += [(jobs, jobs_ok), (outputs, outputs_ok)]

        export_jobs = [job for _ in range(args.exports) for job in export()]
        kills, during = chaos(env, export_jobs, args.kills, tuple(args.delay), log, export)
        seconds = settle(env, export_jobs, args.timeout, log)
        jobs, jobs_ok = _jobs_line(export_jobs)
        outputs, outputs_ok = check_exports(export_jobs)
        print(
            f"export: {kills} SIGKILLs ({during} while a job ran), settled in {seconds:.0f} s; "
            f"{jobs}; {outputs}",
            flush=True,
        )
        results += [(jobs, jobs_ok), (outputs, outputs_ok)]

        passed = all(ok for _, ok in results)
        print("all outputs complete, nothing lost or doubled" if passed else "FAILED")
        if not passed:
            print(log.read_text()[-4000:])
            raise SystemExit(1)


if __name__ == "__main__":
    main()
