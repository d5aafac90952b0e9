"""The real stack of the load scenario and the CPU each part of it uses.

:class:`Stack` migrates a fresh database, builds the world (``benchmarks.load.world`` in a child
process), then starts uvicorn (the README's ASGI server, ``--workers`` processes), one Celery
worker per ``interactive`` and per ``propagate`` process wanted (prefork, one child each,
as ``make run``), all on Redis (``CELERY_BROKER_URL``, the caller's own db number) and on SQLite
or PostgreSQL. :func:`cpu_seconds` reads the CPU time of each part from ``/proc`` (a process and
all its descendants, reaped ones included), so a step's CPU per part is a difference of two
readings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.server_env import server_env

REPO = Path(__file__).resolve().parents[2]
TICK = os.sysconf("SC_CLK_TCK")
POSTMASTER_PID = Path("/var/run/postgresql/15-main.pid")
TASK_LINE = re.compile(
    r"^\[(?P<at>[0-9-]+ [0-9:,]+): [A-Z]+/[^\]]+\] Task [^ ]+ (?:succeeded|raised|failed)"
    r"[^\n]*? in (?P<seconds>[0-9.]+)s",
    re.MULTILINE,
)


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from "state" on (field 3)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def tree_seconds(pid: int, tree: dict[int, list[int]]) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants, with their reaped children."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is None:
            continue
        total += sum(int(v) for v in fields[11:15]) / TICK  # utime stime cutime cstime
        todo += tree.get(current, [])
    return total


def _pid_of(name: str, needle: str) -> int | None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(f"/proc/{entry}/comm").read_text().strip() != name:
                continue
            if needle in Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace"):
                return int(entry)
    return None


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK, sum(values[:8]) / TICK


def free_port(low: int, high: int) -> int:
    """A free port in ``low..high`` (the range this benchmark may use)."""
    for port in range(low, high + 1):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {low}..{high}")


class Stack:
    """The platform's processes for one database (see the module docstring)."""

    def __init__(self, args: Any, data_dir: Path, database_url: str) -> None:
        self.args = args
        self.data_dir = data_dir
        self.database_url = database_url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.env = {
            **server_env(str(data_dir)),
            "CELERY_BROKER_URL": args.redis,
            "SAM2_DEVICE": "cpu",
            "SAM2_TORCH_THREADS": str(args.torch_threads),
            "OMP_NUM_THREADS": str(args.torch_threads),
            "LOG_LEVEL": "warning",
        }
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.port = free_port(*args.ports)
        self.base = f"http://127.0.0.1:{self.port}"
        self.world: dict[str, Any] = {}

    def _run(self, argv: list[str]) -> str:
        done = subprocess.run(
            argv, cwd=REPO, env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise RuntimeError(f"{argv} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _start(self, name: str, argv: list[str]) -> None:
        log = self.data_dir / f"{name}.log"
        with log.open("w") as out:
            self.procs[name] = subprocess.Popen(
                argv,
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.logs[name] = log

    def start(self, annotators: int, reviewers: int, masklets: int) -> None:
        python = sys.executable
        self._run([python, "manage.py", "migrate", "-v0"])
        made = self._run(
            [
                python,
                "-m",
                "benchmarks.load.world",
                str(annotators),
                str(reviewers),
                str(masklets),
                str(self.data_dir),
            ]
        )
        line = next(ln for ln in made.splitlines() if ln.startswith("WORLD "))
        self.world = json.loads(line[len("WORLD ") :])
        self._start(
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "dataengine.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.args.web_workers),
                "--log-level",
                "warning",
            ],
        )
        celery = [
            python,
            "-m",
            "celery",
            "-A",
            "workers",
            "worker",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        for n in range(self.args.interactive_workers):
            self._start(f"interactive{n}", [*celery, "-Q", "interactive", "-n", f"load-i{n}@%h"])
        for n in range(self.args.propagate_workers):
            self._start(f"propagate{n}", [*celery, "-Q", "propagate", "-n", f"load-p{n}@%h"])
        deadline = time.monotonic() + 300
        for name, log in self.logs.items():
            while not self._ready(name, log):
                if time.monotonic() > deadline or self.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} did not start: {log.read_text()[-3000:]}")
                time.sleep(0.3)

    def _ready(self, name: str, log: Path) -> bool:
        if name == "web":
            return self._port_open()
        return " ready." in log.read_text(errors="replace")

    def _port_open(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each part: web, the interactive and propagate workers,
        PostgreSQL (the whole server, every database on it: backends are reaped children of the
        postmaster), Redis, this load generator, and the machine (busy, of all cores)."""
        tree = _children()
        parts = {
            "web": tree_seconds(self.procs["web"].pid, tree),
            "interactive": sum(
                tree_seconds(p.pid, tree) for k, p in self.procs.items() if k.startswith("inter")
            ),
            "propagate": sum(
                tree_seconds(p.pid, tree) for k, p in self.procs.items() if k.startswith("prop")
            ),
        }
        if self.database_url and POSTMASTER_PID.exists():
            parts["postgres*"] = tree_seconds(int(POSTMASTER_PID.read_text().split()[0]), tree)
        redis = _pid_of("redis-server", ":6379")
        if redis is not None:
            parts["redis*"] = tree_seconds(redis, tree)
        own = _stat(os.getpid()) or []
        parts["loadgen"] = sum(int(v) for v in own[11:13]) / TICK  # this process only
        parts["machine"] = machine_busy()[0]
        return parts

    def gauges(self) -> dict[str, float]:
        """Instant readings: the web process's threads (ASGI runs each sync view in a thread),
        PostgreSQL connections to this run's database, the machine's 1-minute load average."""
        readings = {"load avg": float(Path("/proc/loadavg").read_text().split()[0])}
        with contextlib.suppress(OSError, StopIteration):
            status = Path(f"/proc/{self.procs['web'].pid}/status").read_text().splitlines()
            threads = next(ln for ln in status if ln.startswith("Threads:"))
            readings["web threads"] = float(threads.split()[1])
        if self.database_url:
            import psycopg

            server, name = self.database_url.rsplit("/", 1)
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(f"{server}/postgres", connect_timeout=5) as conn,
            ):
                sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                row = conn.execute(sql, (name,)).fetchone()
                readings["db connections"] = float(row[0]) if row else 0.0
        return readings

    def watch(self, peaks: dict[str, float], every: float = 1.0) -> None:
        """Keep the highest :meth:`gauges` readings in ``peaks`` until killed (a greenlet: the
        load generator's ``time.sleep`` is gevent's)."""
        while True:
            for key, value in self.gauges().items():
                peaks[key] = max(peaks.get(key, 0.0), value)
            time.sleep(every)

    def busy(self, start: datetime, end: datetime) -> dict[str, float]:
        """Fraction of ``start..end`` each Celery worker spent running tasks (from the
        ``succeeded in``/``failed`` lines of its log, clipped to the window): 1.0 is a worker
        that never waited for work, the sign that its queue is the bottleneck."""
        fractions = {}
        window = (end - start).total_seconds()
        for name, log in self.logs.items():
            if name == "web":
                continue
            total = 0.0
            for match in TASK_LINE.finditer(log.read_text(errors="replace")):
                finished = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f")
                began = finished - timedelta(seconds=float(match["seconds"]))
                overlap = (min(finished, end) - max(began, start)).total_seconds()
                total += max(0.0, overlap)
            fractions[f"{name} busy"] = total / window
        return fractions

    def errors_in_logs(self) -> dict[str, int]:
        """Tracebacks and ERROR lines each process logged (500s, failed tasks)."""
        found = {}
        for name, log in self.logs.items():
            text = log.read_text(errors="replace")
            found[name] = text.count("Traceback") + text.count("] ERROR")
        return found

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def running(args: Any, data_dir: Path, database_url: str) -> Iterator[Stack]:
    stack = Stack(args, data_dir, database_url)
    try:
        stack.start(max(args.annotators), args.reviewers, args.masklets)
        yield stack
    finally:
        stack.stop()
