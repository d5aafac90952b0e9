"""Load on the real stack: N annotators clicking, saving and propagating and M reviewers playing
masklets and giving verdicts, through the annotation and review APIs, against uvicorn + Celery
workers (``interactive`` and ``propagate``, on Redis) serving a registered test_tiny checkpoint,
on PostgreSQL and on SQLite. Locust in library mode drives the users (``benchmarks/load/users.py``
says what each one does); each step runs N annotators (and the same M reviewers) for a warm-up,
then measures for ``--seconds``.

    .venv/bin/python benchmarks/bench_load.py --annotators 1 2 4 8 16 --reviewers 2 \\
        --seconds 30 --databases postgres sqlite

Prints per step the sustained request rate, p50/p95/p99 latency and errors per request kind
(click, propagate start, propagation start to done, draft save, frame fetch, review page, review
data, verdict), the CPU cores each part used (web, interactive worker, propagate worker,
PostgreSQL and Redis (server-wide, marked *), the load generator, the whole machine), how busy
each Celery worker was, peaks (web threads, PostgreSQL connections, load average), then a
summary: the peak request rate, and where the annotators' work rate falls (clicks per second
per annotator under 70% of the first step's) with what is saturated there.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]

DB_NAME = "de_load"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add = parser.add_argument
    add("--annotators", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="N per step")
    add("--reviewers", type=int, default=2, help="M, the same in every step")
    add("--seconds", type=float, default=30.0, help="measured seconds per step")
    add(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds between the users' start and the measurement",
    )
    add("--think", type=float, default=1.0, help="mean seconds a user waits between actions")
    add("--databases", nargs="+", default=["postgres", "sqlite"], choices=["postgres", "sqlite"])
    add(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help=f"PostgreSQL server; database {DB_NAME} is dropped and made anew",
    )
    add("--redis", default="redis://127.0.0.1:6379/6", help="broker and results (flushed)")
    add("--ports", type=int, nargs=2, default=[8650, 8659], help="port range for uvicorn")
    add("--web-workers", type=int, default=1, help="uvicorn worker processes")
    add("--interactive-workers", type=int, default=1, help="Celery workers on 'interactive'")
    add("--propagate-workers", type=int, default=1, help="Celery workers on 'propagate'")
    add("--torch-threads", type=int, default=1, help="torch threads per worker process")
    add("--masklets", type=int, default=0, help="submitted masklets to review (0: enough)")
    add("--keep-logs", default="", help="copy the processes' logs into this folder")
    args = parser.parse_args()
    if not args.masklets:  # a verdict at most every ~10 s per reviewer (then they re-open)
        steps = len(args.annotators) * (args.seconds + args.warmup + 20)
        args.masklets = int(args.reviewers * steps / 10) + 5
    return args


def _fresh_postgres(server: str) -> str:
    for sql in (f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", f"CREATE DATABASE {DB_NAME}"):
        subprocess.run(["psql", f"{server}/postgres", "-qc", sql], check=True)
    return f"{server}/{DB_NAME}"


def run_database(args: argparse.Namespace, database: str) -> list[Any]:
    """Every step on one database; the steps' figures."""
    import gevent
    import redis
    from locust import between
    from locust.env import Environment

    from benchmarks.load import report, users
    from benchmarks.load.stack import running

    redis.Redis.from_url(args.redis).flushdb()
    url = _fresh_postgres(args.postgres) if database == "postgres" else ""
    think = between(0.5 * args.think, 1.5 * args.think)
    users.Annotator.wait_time = users.Reviewer.wait_time = think
    steps = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-") as tmp,
        running(args, Path(tmp), url) as stack,
    ):
        print(
            f"== {database}: uvicorn workers {args.web_workers}, interactive workers "
            f"{args.interactive_workers}, propagate workers {args.propagate_workers}, torch "
            f"threads {args.torch_threads}, think "
            f"{args.think:g} s, {args.masklets} masklets to review; {stack.world['model']}",
            flush=True,
        )
        env = Environment(user_classes=[users.Annotator, users.Reviewer], host=stack.base)
        runner = env.create_local_runner()
        for n in args.annotators:
            users.Pools.fill(stack.world, n, args.reviewers)
            users.Annotator.fixed_count, users.Reviewer.fixed_count = n, args.reviewers
            runner.start(n + args.reviewers, spawn_rate=100.0)
            users.Pools.wait_started(n + args.reviewers)
            gevent.sleep(args.warmup)
            warm_errors = [
                f"{e.occurrences}x {e.name}: {e.error}" for e in env.stats.errors.values()
            ]
            env.stats.reset_all()
            before, started, since = stack.cpu_seconds(), time.monotonic(), datetime.now()
            peaks: dict[str, float] = {}
            sampler = gevent.spawn(stack.watch, peaks)
            gevent.sleep(args.seconds)
            sampler.kill()
            seconds = time.monotonic() - started
            step = report.snapshot(env.stats, n, args.reviewers, seconds)
            step.cpu = report.cpu_use(before, stack.cpu_seconds(), seconds)
            step.peaks = peaks
            step.busy = stack.busy(since, datetime.now())
            runner.stop()
            left = users.drain(stack.base)
            for line in report.step_lines(step):
                print(line, flush=True)
            for error in warm_errors:
                print(f"  error in the warm-up (not counted): {error}")
            if runner.exceptions:
                for problem in runner.exceptions.values():
                    print(f"  user exception x{problem['count']}: {problem['msg']}")
                runner.exceptions.clear()
            print(
                f"  propagations left running at the stop: {left}; log errors so far: "
                f"{stack.errors_in_logs()}",
                flush=True,
            )
            steps.append(step)
        runner.quit()
        if args.keep_logs:
            keep = Path(args.keep_logs) / database
            keep.mkdir(parents=True, exist_ok=True)
            for log in stack.logs.values():
                shutil.copy(log, keep / log.name)
    for line in report.summary_lines(steps, database, os.cpu_count() or 1):
        print(line, flush=True)
    return steps


def main() -> None:
    from benchmarks.load import users  # noqa: F401  (locust first: gevent patches early)

    args = _arguments()
    logging.getLogger("locust").setLevel(logging.WARNING)
    for database in args.databases:
        with contextlib.suppress(KeyboardInterrupt):
            run_database(args, database)


if __name__ == "__main__":
    main()
