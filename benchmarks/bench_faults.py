"""Faults: the platform under SIGKILLs of its worker and restarts of Redis and PostgreSQL.

    python benchmarks/bench_faults.py --kills 20

One command runs every scenario and prints a table for each (``--scenarios`` picks some):

- ``ingest``, ``export``, ``propagation``, ``auto``, ``train``: a Celery worker is started and
  SIGKILLed ``--kills`` times, each a random delay after it claimed a job of that kind (work is
  added whenever all jobs have ended, so every kill lands on running work); then one worker
  runs undisturbed until every job has ended. Every job must have ended (failed only with its
  reason) and its outputs must be complete and not doubled: frames in storage, export zips,
  draft edits per frame and versions, masklets and revisions, rounds, model versions and
  stored checkpoints (``benchmarks/faults/checks.py``).
- ``redis``: Redis is killed and started again (empty) while jobs run and the web serves;
  ``postgres``: PostgreSQL is stopped (immediate mode) and started again while the web serves
  and the worker writes. Every request must end within its timeout, as 2xx or a JSON 503
  during the outage (never a 500 or an HTML page), the worker must come back without a
  restart, and every job must end succeeded (``benchmarks/faults/restarts.py``).

Everything runs on private servers the benchmark starts and removes: PostgreSQL 15
(``--pg-port``, a cluster in a temporary folder), ``redis-server`` (``--redis-port``) and
uvicorn (``--web-port``); workers recover jobs every 5 s, jobs are stale after 10 s. Models are
a random ``test_tiny`` SAM 2 (objects forced present) on 16-frame 64x96 clips; rounds train a
few steps on two procedural videos.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]

from benchmarks.faults.harness import Platform, platform_env  # noqa: E402
from benchmarks.faults.kills import KillPlan, Outcome  # noqa: E402
from benchmarks.faults.services import PostgresServer, RedisServer  # noqa: E402

SCENARIOS = ("ingest", "export", "propagation", "auto", "train", "redis", "postgres")
#: Seconds from a claim to the SIGKILL, per scenario: about the length of one job here.
DELAYS = {
    "ingest": (0.0, 3.0),
    "export": (0.0, 3.0),
    "propagation": (0.0, 8.0),
    "auto": (0.0, 8.0),
    "train": (0.0, 15.0),
}


def print_table(outcome: Outcome) -> None:
    jobs = outcome.jobs
    rows: list[tuple[str, str]] = []
    if outcome.kills:
        rows.append(("SIGKILLs", f"{outcome.kills} ({outcome.during_job} while a job ran)"))
    if jobs is not None:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(jobs.by_status.items()))
        rows.append(("jobs", f"{sum(jobs.by_status.values())}: {statuses}"))
        rows.append(("attempts", str(jobs.attempts)))
        if jobs.reasons or jobs.unexplained:
            rows.append(("failed", f"reasons {jobs.reasons}, without one {jobs.unexplained}"))
    for line, ok in outcome.checks:
        rows.append(("checked" if ok else "WRONG", line))
    rows += [("note", note) for note in outcome.notes]
    rows.append(("duration", f"{outcome.seconds:.0f} s"))
    rows.append(("result", "ok" if outcome.ok else "FAILED"))
    print(f"\n== {outcome.name}", flush=True)
    for key, value in rows:
        print(f"  {key:<10} {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per kill scenario")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument(
        "--delay",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="seconds from a claim to the SIGKILL, for every kill scenario (default: DELAYS)",
    )
    parser.add_argument("--restarts", type=int, default=3, help="per restart scenario")
    parser.add_argument("--pg-port", type=int, default=5441)
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--web-port", type=int, default=8640)
    parser.add_argument("--work-dir", default="/tmp/faults", help="its temporary folder's parent")
    parser.add_argument("--timeout", type=float, default=900.0, help="for the final worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=100,
        help="JOB_MAX_ATTEMPTS of the workers (3, the default, fails a job killed 3 times)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    random.seed(args.seed)

    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-faults-", dir=args.work_dir))
    folder.chmod(0o755)  # the PostgreSQL cluster inside runs as the postgres user
    redis = RedisServer(args.redis_port, folder / "redis")
    pg = PostgresServer(args.pg_port, folder / "postgres")
    outcomes: list[Outcome] = []
    started = time.monotonic()
    try:
        redis.start()
        pg.init()
        pg.start()
        pg.create_database("faults")
        env = platform_env(folder / "data", redis.url, pg.url("faults"), args.max_attempts)
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True
        )
        import django

        django.setup()
        outcomes = run(chosen, args, Platform(env, folder / "data"), folder, redis, pg)
    finally:
        from django.db import connections

        connections.close_all()
        pg.stop("fast")
        redis.stop()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    passed = bool(outcomes) and all(o.ok for o in outcomes)
    print(
        f"\n{len(outcomes)} scenarios in {time.monotonic() - started:.0f} s: "
        + ("all jobs ended, all outputs complete, nothing lost or doubled" if passed else "FAILED")
    )
    if not passed:
        raise SystemExit(1)


def run(
    chosen: list[str],
    args: argparse.Namespace,
    platform: Platform,
    folder: Path,
    redis: RedisServer,
    pg: PostgresServer,
) -> list[Outcome]:
    from benchmarks.faults import kills, restarts, work

    outcomes: list[Outcome] = []
    if {"propagation", "auto", "train", "redis", "postgres"} & set(chosen):
        work.promote_tiny_model(folder)

    def plan(name: str) -> KillPlan:
        delays = tuple(args.delay) if args.delay else DELAYS[name]
        return KillPlan(args.kills, (delays[0], delays[1]), args.timeout)

    for name in chosen:
        if name == "ingest":
            outcome = kills.ingest(platform, plan(name), folder)
        elif name == "export":
            outcome = kills.export(platform, plan(name))
        elif name == "propagation":
            outcome = kills.propagation(platform, plan(name))
        elif name == "auto":
            outcome = kills.auto_masklets(platform, plan(name))
        elif name == "train":
            outcome = kills.training(platform, plan(name))
        elif name == "redis":
            outcome = restarts.redis_restarts(platform, redis, args, folder)
        else:
            outcome = restarts.postgres_restarts(platform, pg, args, folder)
        print_table(outcome)
        if not outcome.ok:
            print(platform.log_tail())
        outcomes.append(outcome)
    return outcomes


if __name__ == "__main__":
    main()
