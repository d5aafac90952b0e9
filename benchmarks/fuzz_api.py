"""Longer schema fuzzing than CI's: a real server (uvicorn, SQLite and local storage in a
temporary folder) with the security suite's two projects, fuzzed by schemathesis as each role.

    python benchmarks/fuzz_api.py --examples 25 --budget 600

Prints the operation count, requests, statuses, server errors and every distinct failed check
(server error or response not conforming to the schema) with a request that caused it.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]

from benchmarks.server_env import server_env  # noqa: E402

ROLES = ("annotator", "reviewer", "manager", "outside_manager", "admin")
SETUP = f"""
import json, django
django.setup()
from rest_framework.authtoken.models import Token
from tests.security.world import build_world
world = build_world()
tokens = {{r: Token.objects.get_or_create(user=world.persona(r))[0].key for r in {ROLES!r}}}
print("TOKENS " + json.dumps(tokens))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 180.0) -> None:
    import requests

    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            requests.get(url, timeout=10)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=25, help="per operation and role")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of fuzzing")
    args = parser.parse_args()

    from tests.security.fuzzing import fuzz

    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as data_dir:
        env = server_env(data_dir)
        run = {"cwd": REPO, "env": env, "check": True}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], **run)  # type: ignore[call-overload]
        setup = subprocess.run([sys.executable, "-c", SETUP], capture_output=True, text=True, **run)  # type: ignore[call-overload]
        line = next(ln for ln in setup.stdout.splitlines() if ln.startswith("TOKENS "))
        tokens = json.loads(line.removeprefix("TOKENS "))
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "dataengine.asgi:application",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            ],
            cwd=REPO,
            env=env,
        )  # fmt: skip
        try:
            _wait_up(f"{base_url}/login/", server)
            started = time.monotonic()
            report = fuzz(base_url, tokens, max_examples=args.examples, budget_seconds=args.budget)
            seconds = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"operations: {report.operations} x roles: {len(tokens)} ({', '.join(tokens)})")
    print(f"requests: {report.requests} in {seconds:.0f} s ({report.requests / seconds:.1f}/s)")
    print(f"statuses: {dict(sorted(report.statuses.items()))}")
    print(
        f"server errors: {report.server_errors} "
        f"(and {report.designed_unavailable} documented 503s: no SAM 2 model configured)"
    )
    print(f"operation-roles left out by the budget: {len(report.skipped)}")
    print(f"distinct failed checks: {len(report.failures)}")
    for failure in report.failures:
        print("  " + failure)


if __name__ == "__main__":
    main()
