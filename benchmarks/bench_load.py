"""Load on the real web stack: N annotators saving brush edits on their drafts and polling them,
M reviewers loading masklets to review, against uvicorn (SQLite and local storage in a temporary
folder by default; ``--database-url`` for PostgreSQL). Threads with ``requests`` stand in for
locust (same closed-loop model: each user sends its next request when the last one answered).

    python benchmarks/bench_load.py --annotators 1 2 4 8 16 --reviewers 2 --seconds 20

Prints, per N: requests/s sustained, latency p50/p95/p99 (ms), errors, and where throughput stops
growing (the saturation point on this machine). Clicks and propagation need an interactive SAM 2
worker and are not part of this scenario (see the README's figures for bench_interactive.py).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]

from benchmarks.server_env import server_env  # noqa: E402

H, W, FRAMES = 96, 128, 30


def setup(annotators: int, reviewers: int) -> dict[str, Any]:
    """(In the child process.) Users, one project, a video and a draft per annotator, submitted
    masklets for the reviewers; their tokens and ids."""
    import django

    django.setup()
    import numpy as np
    from rest_framework.authtoken.models import Token

    from engine.accounts.projects import do_create_project, do_create_user, do_set_membership
    from engine.annotation import drafts, leases
    from engine.masklets.revisions import FrameMask, do_create_masklet
    from engine.masks.rle import encode_rle
    from engine.models import Video
    from engine.review.submission import do_submit_masklet

    boss = do_create_user("load-manager", "pass-manager-1", "manager")
    project = do_create_project("load", boss)
    mask = np.zeros((H, W), dtype=bool)
    mask[10:40, 20:60] = True
    people, masklets = [], []
    for n in range(annotators):
        user = do_create_user(f"annotator{n}", "pass-annotator-1", "annotator")
        do_set_membership(project, user, "annotator")
        Video.objects.create(
            project=project, name=f"v{n}.mp4", status=Video.Status.READY,
            width=W, height=H, frame_count=FRAMES,
        )  # fmt: skip
        lease = leases.do_take_next_video(user, project)
        assert lease is not None
        draft = drafts.do_create_object(user, lease, "object")
        people.append({"token": Token.objects.create(user=user).key, "masklet": draft.pk})
        frames = {i: FrameMask(encode_rle(mask), "click") for i in range(0, FRAMES, 2)}
        done = do_create_masklet(lease.video, author=user, frames=frames)
        masklets.append(do_submit_masklet(done, user).pk)
    checkers = []
    for n in range(reviewers):
        user = do_create_user(f"reviewer{n}", "pass-reviewer-1", "reviewer")
        do_set_membership(project, user, "reviewer")
        checkers.append(Token.objects.create(user=user).key)
    return {"annotators": people, "reviewers": checkers, "masklets": masklets}


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}

    def add(self, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if error:
                self.errors[error] = self.errors.get(error, 0) + 1


def _annotator(base: str, person: dict[str, Any], stop: float, stats: Stats) -> None:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {person['token']}"
    url = f"{base}/api/masklets/{person['masklet']}/draft/"
    version = session.get(url, timeout=60).json()["version"]
    n = 0
    while time.monotonic() < stop:
        frame = n % FRAMES
        counts = [frame * W + 5, 50, H * W - frame * W - 55]  # a short run on this frame
        rle = {"size": [H, W], "counts": counts}
        body = {
            "base_version": version,
            "edits": [{"frame_index": frame, "tool": "brush", "rle": rle}],
        }
        started = time.monotonic()
        answer = session.post(url + "edits/", json=body, timeout=60)
        stats.add(time.monotonic() - started, None if answer.ok else str(answer.status_code))
        if answer.ok:
            version = answer.json().get("version", version + 1)
        started = time.monotonic()
        polled = session.get(url, params={"since": max(0, version - 1)}, timeout=60)
        stats.add(time.monotonic() - started, None if polled.ok else str(polled.status_code))
        n += 1


def _reviewer(base: str, token: str, masklets: list[int], stop: float, stats: Stats) -> None:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    n = 0
    while time.monotonic() < stop:
        masklet = masklets[n % len(masklets)]
        started = time.monotonic()
        answer = session.get(f"{base}/api/masklets/{masklet}/review/", timeout=60)
        stats.add(time.monotonic() - started, None if answer.ok else str(answer.status_code))
        n += 1


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotators", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="per step")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default SQLite)")
    parser.add_argument("--setup-only", type=str, default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_only:
        n, m = (int(v) for v in args.setup_only.split(","))
        print("SETUP " + json.dumps(setup(n, m)))
        return

    import requests

    with tempfile.TemporaryDirectory(prefix="bench-load-") as data_dir:
        env = server_env(data_dir)
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True
        )
        most = max(args.annotators)
        made = subprocess.run(
            [sys.executable, __file__, "--setup-only", f"{most},{args.reviewers}"],
            cwd=REPO, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        world = json.loads(
            next(ln for ln in made.stdout.splitlines() if ln.startswith("SETUP "))[6:]
        )
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "dataengine.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(args.workers), "--log-level", "warning"],
            cwd=REPO, env=env,
        )  # fmt: skip
        try:
            for _ in range(600):
                try:
                    requests.get(f"{base}/login/", timeout=10)
                    break
                except requests.RequestException:
                    time.sleep(0.3)
            print(f"reviewers: {args.reviewers}, {args.seconds:.0f} s per step, "
                  f"uvicorn workers: {args.workers}, database: "
                  f"{'PostgreSQL' if args.database_url else 'SQLite'}")  # fmt: skip
            print(f"{'N':>3} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7}")
            best = 0.0
            saturated_at = None
            for n in args.annotators:
                stats = Stats()
                stop = time.monotonic() + args.seconds
                threads = [
                    threading.Thread(target=_annotator, args=(base, p, stop, stats))
                    for p in world["annotators"][:n]
                ] + [
                    threading.Thread(
                        target=_reviewer, args=(base, t, world["masklets"], stop, stats)
                    )
                    for t in world["reviewers"]
                ]
                started = time.monotonic()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                rate = len(stats.latencies) / (time.monotonic() - started)
                errors = sum(stats.errors.values())
                print(
                    f"{n:>3} {rate:>7.1f} {_percentile(stats.latencies, 0.5):>7.0f} "
                    f"{_percentile(stats.latencies, 0.95):>7.0f} "
                    f"{_percentile(stats.latencies, 0.99):>7.0f} {errors:>7}"
                    + (f"  {stats.errors}" if errors else ""),
                    flush=True,
                )
                if saturated_at is None and best and rate < best * 1.1:
                    saturated_at = n
                best = max(best, rate)
            print(
                f"throughput stops growing at N={saturated_at} annotators (peak {best:.1f} req/s)"
                if saturated_at
                else f"no saturation up to N={max(args.annotators)} (peak {best:.1f} req/s)"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
