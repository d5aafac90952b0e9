"""The real stack of the load scenario and the CPU each part of it uses.

:class:`Stack` migrates a fresh database, builds the world (``benchmarks.load.world`` in a child
process), then starts uvicorn (the README's ASGI server, ``--workers`` processes), one Celery
worker per ``interactive`` process wanted and one ``propagate`` worker (prefork, one child each,
as ``make run``), all on Redis (``CELERY_BROKER_URL``, the caller's own db number) and on SQLite
or PostgreSQL. :func:`cpu_seconds` reads the CPU time of each part from ``/proc`` (a process and
all its descendants, reaped ones included), so a step's CPU per part is a difference of two
readings.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.server_env import server_env

REPO = Path(__file__).resolve().parents[2]
TICK = os.sysconf("SC_CLK_TCK")
POSTMASTER_PID = Path("/var/run/postgresql/15-main.pid")


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
        self._start("propagate", [*celery, "-Q", "propagate", "-n", "load-p@%h"])
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
            "propagate": tree_seconds(self.procs["propagate"].pid, tree),
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
