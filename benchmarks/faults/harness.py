"""The platform under test: its environment, Celery workers and the web server as children,
the kill loop (:func:`chaos`), the undisturbed finish (:func:`settle`) and the job summary.

The benchmark process itself runs Django on the same database and broker as its children, to
create work through ``engine`` and to count what the workers wrote.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.server_env import REPO, server_env

TERMINAL = ("succeeded", "failed", "cancelled")
QUEUES = "default,interactive,propagate,train"


def platform_env(
    data_dir: Path, broker: str, database_url: str, max_attempts: int
) -> dict[str, str]:
    """Environment of every process of the platform under test (this one included): recovery
    beat every 5 s, jobs stale after 10 s, one torch thread, the benchmark's worker settings."""
    env = server_env(str(data_dir))
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "benchmarks.faults.worker_settings",
            "CELERY_BROKER_URL": broker,
            "DATABASE_URL": database_url,
            "JOB_STALE_SECONDS": "10",
            "JOB_RECOVERY_INTERVAL_SECONDS": "5",
            "JOB_MAX_ATTEMPTS": str(max_attempts),
            "SAM2_DEVICE": "cpu",
            "SAM2_TORCH_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "ANNOTATION_WARM_FRAMES": "0",
            "LOG_LEVEL": "warning",
        }
    )
    return env


@dataclass
class Platform:
    """Children of the benchmark: Celery workers (with beat) and a web server."""

    env: dict[str, str]
    data_dir: Path
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data_dir / "processes.log"

    def start_worker(self) -> subprocess.Popen[bytes]:
        """One worker process on every queue, solo pool, with Celery beat embedded."""
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-B", "-Q", QUEUES,
             "--pool", "solo", "--concurrency", "1", "--without-gossip", "--without-mingle",
             "--loglevel", "WARNING", "--schedule", str(self.data_dir / "beat-schedule")],
            cwd=REPO, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def start_web(self, port: int) -> subprocess.Popen[bytes]:
        """uvicorn serving the ASGI app on 127.0.0.1:`port`."""
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "dataengine.asgi:application", "--host",
             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=REPO, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group (the worker, its beat child)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM (a warm shutdown), SIGKILL if it takes longer than `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)


def pending(job_ids: list[int]) -> int:
    from engine.models import Job

    return Job.objects.filter(pk__in=job_ids).exclude(status__in=TERMINAL).count()


@dataclass
class ChaosResult:
    kills: int = 0
    during_job: int = 0  # kills while a job of this worker was running
    delays: list[float] = field(default_factory=list)


def chaos(
    platform: Platform,
    job_ids: list[int],
    kills: int,
    delays: tuple[float, float],
    more_work: Callable[[], list[int]],
) -> ChaosResult:
    """``kills`` times: start a worker, wait until it has claimed a job (at most 120 s), SIGKILL
    it after a random delay in `delays`; when every job has ended, ``more_work()`` adds jobs
    (their ids join ``job_ids``)."""
    from django.utils import timezone

    from engine.models import Job

    result = ChaosResult()
    for _ in range(kills):
        if not pending(job_ids):
            job_ids += more_work()
        started = timezone.now()
        worker = platform.start_worker()
        mine = Job.objects.filter(pk__in=job_ids, status="running", heartbeat_at__gte=started)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and pending(job_ids) and not mine.exists():
            time.sleep(0.1)
        delay = random.uniform(*delays)
        time.sleep(delay)
        result.during_job += int(mine.exists())
        result.delays.append(delay)
        kill(worker)
        result.kills += 1
    return result


def settle(platform: Platform, job_ids: list[int], timeout: float) -> float:
    """One undisturbed worker until every job has ended; the seconds it took."""
    started = time.monotonic()
    worker = platform.start_worker()
    try:
        while pending(job_ids) and time.monotonic() - started < timeout:
            time.sleep(1)
    finally:
        stop(worker)
    return time.monotonic() - started


@dataclass
class JobSummary:
    by_status: dict[str, int]
    attempts: int
    reasons: list[str]
    unexplained: list[int]  # failed without a reason
    ok: bool

    def line(self) -> str:
        text = f"jobs {self.by_status}, attempts {self.attempts}"
        if self.unexplained:
            text += f", failed without a reason {self.unexplained}"
        return text + (f", reasons {self.reasons}" if self.reasons else "")


def summarize_jobs(job_ids: list[int], *, must_succeed: bool = False) -> JobSummary:
    """Every job ended (with a reason when failed); `must_succeed`: none failed."""
    from engine.models import Job

    jobs = list(Job.objects.filter(pk__in=job_ids))
    by_status = dict(Counter(str(j.status) for j in jobs))
    unexplained = [j.pk for j in jobs if j.status == "failed" and not j.error]
    reasons = sorted({j.error[:200] for j in jobs if j.status == "failed" and j.error})
    ok = len(jobs) == len(job_ids) and all(j.status in TERMINAL for j in jobs) and not unexplained
    if must_succeed:
        ok = ok and all(j.status == "succeeded" for j in jobs)
    return JobSummary(by_status, sum(j.attempt for j in jobs), reasons, unexplained, ok)
