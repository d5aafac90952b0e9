"""The SIGKILL scenarios: kill the worker again and again while it runs one kind of job, then
let one worker finish undisturbed and check every job and its outputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.faults import checks, work
from benchmarks.faults.harness import JobSummary, Platform, chaos, settle, summarize_jobs


@dataclass
class Outcome:
    """One scenario's row of figures."""

    name: str
    seconds: float = 0.0
    kills: int = 0
    during_job: int = 0
    jobs: JobSummary | None = None
    checks: list[checks.Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.jobs is not None and self.jobs.ok and all(ok for _, ok in self.checks)


@dataclass(frozen=True)
class KillPlan:
    kills: int
    delays: tuple[float, float]  # seconds from a claim to the SIGKILL
    timeout: float  # for the undisturbed worker at the end


def run_kills(
    name: str,
    platform: Platform,
    plan: KillPlan,
    first: Callable[[], list[int]],
    more: Callable[[], list[int]],
    check: Callable[[list[int]], checks.Check],
) -> Outcome:
    started = time.monotonic()
    job_ids = first()
    chaos_result = chaos(platform, job_ids, plan.kills, plan.delays, more)
    settled = settle(platform, job_ids, plan.timeout)
    outcome = Outcome(name, kills=chaos_result.kills, during_job=chaos_result.during_job)
    outcome.jobs = summarize_jobs(job_ids)
    outcome.checks.append(check(job_ids))
    outcome.seconds = time.monotonic() - started
    low, high = plan.delays
    outcome.notes.append(
        f"each kill {low:g} to {high:g} s after a claim; settled in {settled:.0f} s"
    )
    return outcome


def ingest(platform: Platform, plan: KillPlan, folder: Path, videos: int = 2) -> Outcome:
    w = work.new_project("faults-ingest", annotation_fps=12.0)
    upload = work.uploader(w, folder / "clips")
    return run_kills(
        "ingest",
        platform,
        plan,
        lambda: [j for _ in range(videos) for j in upload()],
        upload,
        lambda ids: checks.check_ingest(w.videos),
    )


def export(platform: Platform, plan: KillPlan, exports: int = 2) -> Outcome:
    w = work.new_project("faults-export", annotation_fps=12.0)
    # something to export that takes a few seconds (JPEG frames and PNG masks of 6 videos),
    # so that kills land on running exports
    work.verified_videos(w, 6, frames=24, size=256)
    start = work.exporter(w)
    return run_kills(
        "export",
        platform,
        plan,
        lambda: [j for _ in range(exports) for j in start()],
        start,
        checks.check_exports,
    )


def propagation(platform: Platform, plan: KillPlan, runs: int = 2) -> Outcome:
    from engine.models import Project

    w = work.new_project("faults-propagate", phase=Project.Phase.SAM2_MASK)
    start = work.propagator(w)
    return run_kills(
        "propagation",
        platform,
        plan,
        lambda: [j for _ in range(runs) for j in start()],
        start,
        lambda ids: checks.check_propagation(ids, w.masklets, w.base_versions),
    )


def auto_masklets(platform: Platform, plan: KillPlan, videos: int = 2) -> Outcome:
    w = work.new_project("faults-automask")
    start = work.auto_masker(w)
    return run_kills(
        "auto masklets",
        platform,
        plan,
        lambda: [j for _ in range(videos) for j in start()],
        start,
        checks.check_auto_masklets,
    )


def training(platform: Platform, plan: KillPlan, steps: int = 4) -> Outcome:
    w = work.new_project("faults-train", annotation_fps=12.0)
    work.verified_videos(w, 2)  # one to train on, one held out
    start = work.rounder(w, steps)
    return run_kills("training round", platform, plan, start, start, checks.check_rounds)
