"""Real servers for tests: a SeaweedFS S3 server and Celery workers, each a child process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def env(self, bucket: str) -> dict[str, str]:
        return {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_ACCESS_KEY_ID": self.access_key,
            "S3_SECRET_ACCESS_KEY": self.secret_key,
        }


@contextmanager
def seaweedfs(workdir: Path) -> Iterator[S3Server]:
    """Run ``weed mini`` on free 127.0.0.1 ports with one access key; stop it afterwards."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    config = workdir / "s3.json"
    access, secret = "testkey", "testsecret123"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "test",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        )
    }
    args = [
        weed,
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
    ] + [f"-{k}={v}" for k, v in ports.items()]
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    log = (workdir / "weed.log").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(ports["s3.port"], timeout=60)
        server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", access, secret)
        _wait_until_s3_answers(server)
        yield server
    finally:
        _stop_group(proc)
        log.close()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child started with start_new_session=True, and everything it started (a test
    may have killed it already)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_until_s3_answers(server: S3Server, timeout: float = 60.0) -> None:
    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_buckets()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def celery_worker(
    env: dict[str, str],
    log_path: Path,
    queues: str = "default",
    *,
    inherit: bool = True,
    extra_args: tuple[str, ...] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` child process with ``env`` (layered over ours if ``inherit``)."""
    full_env = {**os.environ, **env} if inherit else dict(env)
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "platform")])
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            *extra_args,
        ],
        cwd=REPO,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        _stop_group(proc)
        log.close()


def database_env_for_children() -> dict[str, str]:
    """Environment that points a child process at this test run's database."""
    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return {"DATABASE_URL": f"sqlite:///{conf['NAME']}"}
    host, port = conf.get("HOST") or "127.0.0.1", conf.get("PORT") or 5432
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf.get("PASSWORD") else "")
    return {"DATABASE_URL": f"postgresql://{auth}@{host}:{port}/{conf['NAME']}"}


def worker_env(broker_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """Environment of a worker process that shares this test run's database and sends to
    `broker_url`, with its own ``DATA_DIR`` (``workdir/worker-data``), plus `extra`."""
    return {
        **database_env_for_children(),
        "CELERY_BROKER_URL": broker_url,
        "DATA_DIR": str(workdir / "worker-data"),
        **extra,
    }


def run_worker_until(
    row: Any,
    statuses: Collection[str],
    *,
    env: dict[str, str],
    workdir: Path,
    timeout: float,
    extra_args: tuple[str, ...] = (),
) -> str:
    """Start a real worker (on the default queue) with `env`, wait until `row`'s status is one of
    `statuses` or `timeout` passes, stop the worker and return its log (``workdir/worker.log``).
    The caller asserts the outcome, with the log in the message."""
    log_path = workdir / "worker.log"
    with celery_worker(env, log_path, extra_args=extra_args):
        wait_for_status(row, statuses, timeout)
    return log_path.read_text()


def wait_for_status(row: Any, statuses: Collection[str], timeout: float) -> None:
    """Refresh a model row (e.g. a Job or Video a worker process is handling) until its status is
    one of `statuses` or `timeout` seconds pass; the caller asserts the outcome."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row.refresh_from_db()
        if row.status in statuses:
            return
        time.sleep(0.3)
