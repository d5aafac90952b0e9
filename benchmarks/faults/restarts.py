"""Redis and PostgreSQL restarted while jobs run and the web serves.

One web server (uvicorn) and one worker run throughout; neither is restarted. A client asks
the API twice a second (a project, its jobs, and, in the Redis scenario, a new export, which
goes through the broker). The service is stopped (Redis: SIGKILL, losing every queued
message; PostgreSQL: an immediate shutdown, cutting every connection) for a few seconds and
started again, ``--restarts`` times, with work added whenever all jobs have ended. Then the
same worker must finish every job, every request must have ended within its timeout as a 2xx
or a JSON 503 (never a 500, an HTML error or a hang), and requests after the last restart must
succeed again.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.faults import checks, work
from benchmarks.faults.harness import Platform, pending, stop, summarize_jobs
from benchmarks.faults.kills import Outcome
from benchmarks.faults.services import wait_for_port

REQUEST_TIMEOUT = 15.0  # a request still unanswered after this long counts as a hang


@dataclass
class Answer:
    at: float  # monotonic time the request was sent
    method: str
    path: str
    status: int  # 0: no answer (timeout or connection error)
    json: bool
    seconds: float
    error: str = ""


@dataclass
class Prober:
    """A client thread that asks the API every half second until stopped."""

    base: str
    token: str
    requests: list[tuple[str, str, dict[str, Any] | None, int]]  # ..., every n-th round
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=REQUEST_TIMEOUT + 5)

    def _run(self) -> None:
        rounds = 0
        while not self._stop.is_set():
            for method, path, body, every in self.requests:
                if rounds % every:
                    continue
                self.answers.append(self._ask(method, path, body))
                if self._stop.wait(0.5):
                    return
            rounds += 1

    def _ask(self, method: str, path: str, body: dict[str, Any] | None) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Token {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                status, ctype = response.status, response.headers.get("Content-Type", "")
                response.read()
        except urllib.error.HTTPError as exc:
            status, ctype = exc.code, exc.headers.get("Content-Type", "")
            exc.read()
        except Exception as exc:  # timeout, refused connection
            return Answer(started, method, path, 0, False, time.monotonic() - started, repr(exc))
        seconds = time.monotonic() - started
        return Answer(started, method, path, status, "json" in ctype, seconds)


def _answers_check(answers: list[Answer], outages: list[tuple[float, float]]) -> checks.Check:
    """Every answer a 2xx or a JSON 503, none a hang; the ones sent after the last outage (and
    a second of grace) all 2xx."""
    by_status = Counter(a.status for a in answers)
    bad = [a for a in answers if not (200 <= a.status < 300 or (a.status == 503 and a.json))]
    last_end = outages[-1][1] if outages else 0.0
    after = [a for a in answers if a.at > last_end + 1.0]
    after_bad = [a for a in after if not 200 <= a.status < 300]
    slowest = max(answers, key=lambda a: a.seconds, default=None)
    during = [a for a in answers if any(s <= a.at <= e for s, e in outages)]
    slow = "none"
    if slowest is not None:
        in_outage = any(s <= slowest.at + slowest.seconds and slowest.at <= e for s, e in outages)
        slow = (
            f"{slowest.seconds:.2f} s ({slowest.method} {slowest.path} -> {slowest.status}, "
            f"{'during' if in_outage else 'outside'} an outage)"
        )
    line = (
        f"requests {len(answers)} (statuses {dict(sorted(by_status.items()))}), "
        f"{len(during)} sent during outages, slowest {slow}, "
        f"not 2xx or JSON 503: {[(a.method, a.path, a.status, a.error[:80]) for a in bad][:5]}, "
        f"after the last restart {len(after)} with {len(after_bad)} not 2xx"
    )
    return line, not bad and not after_bad and bool(after)


@dataclass(frozen=True)
class Service:
    name: str
    stop: Callable[[], None]
    start: Callable[[], None]


def restart_scenario(
    name: str,
    service: Service,
    platform: Platform,
    args: argparse.Namespace,
    folder: Path,
    *,
    api_export: bool,
) -> Outcome:
    from rest_framework.authtoken.models import Token

    from engine.models import Project

    started = time.monotonic()
    w = work.new_project(f"faults-{name}", annotation_fps=12.0)
    work.verified_videos(w, 2)
    token = Token.objects.create(user=w.manager).key
    upload, export = work.uploader(w, folder / f"clips-{name}"), work.exporter(w)
    wp = work.new_project(f"faults-{name}-propagate", phase=Project.Phase.SAM2_MASK)
    propagate = work.propagator(wp)
    uploads: list[int] = []
    exports: list[int] = []
    runs: list[int] = []

    def more() -> None:
        uploads.extend(upload())
        runs.extend(propagate())
        exports.extend(export())

    more()
    more()
    requests: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("GET", f"/api/projects/{w.project.pk}/", None, 1),
        ("GET", f"/api/projects/{w.project.pk}/jobs/", None, 1),
    ]
    if api_export:  # a new job through the broker every third round
        export_path = f"/api/projects/{w.project.pk}/exports/"
        requests.append(("POST", export_path, {"format": "davis"}, 3))
    web = platform.start_web(args.web_port)
    worker = platform.start_worker()
    prober = Prober(f"http://127.0.0.1:{args.web_port}", token, requests)
    outages: list[tuple[float, float]] = []
    notes: list[str] = []
    try:
        wait_for_port(args.web_port, timeout=60)
        # warm: the web process imports Celery on its first send, which on a loaded machine
        # holds its one thread for sync views for seconds: not what this scenario measures
        for method, path, body, _ in requests:
            prober._ask(method, path, body)
        prober.start()
        for _ in range(args.restarts):
            time.sleep(random.uniform(3.0, 8.0))
            if not pending(uploads + runs + exports):
                more()
            down = time.monotonic()
            service.stop()
            time.sleep(random.uniform(2.0, 5.0))
            service.start()
            outages.append((down, time.monotonic()))
        all_jobs = lambda: uploads + runs + exports + _api_exports(w.project, exports)  # noqa: E731
        deadline = time.monotonic() + args.timeout
        while pending(all_jobs()) and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(1)
        time.sleep(3)  # a few more requests after recovery
        finished = time.monotonic() - outages[-1][1]
        notes.append(f"all jobs ended {finished:.0f} s after the last restart")
    finally:
        prober.stop()
        alive = worker.poll() is None
        stop(worker)
        stop(web)
    notes.insert(0, f"{len(outages)} restarts, down {_spans(outages)}")
    exports_all = exports + _api_exports(w.project, exports)
    outcome = Outcome(name, notes=notes)
    outcome.jobs = summarize_jobs(uploads + runs + exports_all, must_succeed=True)
    outcome.checks += [
        (f"the worker {'ran throughout' if alive else 'DIED'}", alive),
        _answers_check(prober.answers, outages),
        checks.check_ingest(_uploaded_videos(uploads)),
        checks.check_propagation(runs, wp.masklets, wp.base_versions),
        _exports_check(exports_all),
    ]
    outcome.seconds = time.monotonic() - started
    return outcome


def _spans(outages: list[tuple[float, float]]) -> str:
    return ", ".join(f"{end - start:.1f} s" for start, end in outages)


def _api_exports(project: Any, known: list[int]) -> list[int]:
    """Export jobs the prober started through the API."""
    from engine.models import Job

    jobs = Job.objects.filter(project=project, kind="export").exclude(pk__in=known)
    return list(jobs.values_list("pk", flat=True))


def _uploaded_videos(ingest_jobs: list[int]) -> list[int]:
    from engine.models import Job

    return [v for v in Job.objects.filter(pk__in=ingest_jobs).values_list("video", flat=True) if v]


def _exports_check(job_ids: list[int]) -> checks.Check:
    """Every export succeeded with a whole zip (their contents differ: videos arrive between
    them, so :func:`checks.check_exports`'s "all the same" does not apply)."""
    import zipfile

    from django.conf import settings

    from engine.models import Job

    wrong = []
    for job in Job.objects.filter(pk__in=job_ids):
        path = Path(settings.MEDIA_ROOT) / job.result.get("key", "-")
        if job.status != "succeeded" or not path.is_file():
            wrong.append((job.pk, job.status))
            continue
        with zipfile.ZipFile(path) as zf:
            if zf.testzip() is not None:
                wrong.append((job.pk, "corrupt zip"))
    return (
        f"exports {len(job_ids)}, whole zips {len(job_ids) - len(wrong)}, wrong {wrong}",
        not wrong,
    )


def redis_restarts(
    platform: Platform, redis: Any, args: argparse.Namespace, folder: Path
) -> Outcome:
    service = Service("redis", redis.stop, redis.start)
    return restart_scenario("redis restarts", service, platform, args, folder, api_export=True)


def postgres_restarts(
    platform: Platform, pg: Any, args: argparse.Namespace, folder: Path
) -> Outcome:
    from django.db import connections

    def stop_pg() -> None:
        connections.close_all()  # this process's connection dies with the server
        pg.stop("immediate")

    service = Service("postgres", stop_pg, pg.start)
    return restart_scenario("postgres restarts", service, platform, args, folder, api_export=False)
