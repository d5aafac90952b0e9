"""Interactive serving benchmark: click-to-mask latency and propagation speed through the stack.

For each model config (random weights saved as an official checkpoint, served through
``SAM2_CHECKPOINT`` / ``SAM2_CONFIG``) a fresh child process builds a fresh database (PostgreSQL
by default, ``--database sqlite`` for a file in the temp dir), a fresh ``DATA_DIR`` and synthetic
videos of ``--frames`` JPEG frames (``--video-size``, a bright box moving over noise), then
measures:

1. **Server time**, in this process: ``engine.annotation.serving.handle_prompt`` (what the
   interactive task runs: checks, session sync with the saved prompts, the model, RLE, the draft
   save, the session route), with a breakdown (model modules by forward hooks, serving steps by
   wrappers, SQL queries and their time by ``connection.execute_wrapper``):
   - first mask on ``--first-frames`` frames never seen (backbone not cached);
   - ``--clicks`` clicks on those frames (features cached; phase 3 ``video_click`` on frames not
     yet propagated), a simulated annotator alternating positive clicks inside the object and
     negative ones just outside it, up to ``--points-per-frame`` points, then the next frame;
   - one propagation (``run_propagation_job`` in process), then ``--corrections`` clicks on
     tracked frames (memory attention runs);
   - the same first-mask and ``--image-clicks`` clicks with ``image_click`` (phase 1, the image
     predictor).
2. **End to end**: uvicorn (as ``make run``) and two real Celery workers on Redis (``-Q
   interactive``, ``-Q propagate``; ``--pool``, prefork with one child by default, as ``make
   run``) on the same database; the client posts ``POST /api/masklets/<id>/prompt/`` with a token
   over a keep-alive HTTP connection: the same sequence of clicks on another video. Then
   ``POST /api/masklets/<id>/propagate/`` (forward from frame 0, every frame): time from the
   request until ``GET /api/jobs/<id>/`` says succeeded, twice: *cold* (the propagate worker loads
   the model and starts from the session state the interactive worker saved after the clicks,
   features of clicked frames from the shared store) and *warm* (after the corrections; it
   loads the state saved after the last correction). Breakdown probes: the worker's own task time
   (its log), a Celery round trip of a prompt task that fails at once (unknown masklet), and an
   HTTP request refused after all web-side checks (stale version, 409). Last, the page's
   warm-ups on a third video: a first click on a frame never seen, ``--think`` s after
   ``POST /api/annotation/leases/<id>/warm/`` for it; then, after a propagation, first
   corrections on tracked frames, every other one ``--correction-think`` s after a warm-up
   naming the frame and the object (memory attention prepared), the others without.
3. **Bare model**: a fresh ``VideoSession`` in this process on the same frames (a JPEG folder),
   checkpoint and prompts (the saved operation log replayed untimed), propagate timed; and
   ``python -m model predict-video`` (wall time with the clicks and the propagation minus wall
   time with the clicks only); and the floor of a click, ``VideoSession.add_points`` alone with
   cached features, on the cached-path clicks.

    .venv/bin/python benchmarks/bench_interactive.py --quick     # a few minutes
    .venv/bin/python benchmarks/bench_interactive.py             # test_tiny + hiera_t, 200 clicks
    .venv/bin/python benchmarks/bench_interactive.py --configs sam2.1_hiera_t --clicks 200 \\
        --frames 10 --corrections 20

Prints figures, asserts nothing. Redis db 13 (``--redis``) is flushed for each config.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REDIS_DEFAULT = "redis://127.0.0.1:6379/13"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKER = "bench@inproc"


# --- the simulated annotator -------------------------------------------------------------------


def object_box(index: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the moving box on frame `index`."""
    bw, bh = width // 5, height // 3
    x0 = width // 10 + (index * width // 60) % (width - bw - width // 10)
    y0 = height // 4
    return x0, y0, x0 + bw, y0 + bh


def make_frames(folder: Path, count: int, width: int, height: int) -> list[bytes]:
    """JPEG frames `0.jpg` ...: a bright box moving right over noise, a fixed dark disc."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 60, (height, width, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    out = []
    for i in range(count):
        img = noise.copy()
        x0, y0, x1, y1 = object_box(i, width, height)
        img[y0:y1, x0:x1] = (230, 200, 40)
        img[(yy - height * 3 // 4) ** 2 + (xx - width * 3 // 4) ** 2 < (height // 8) ** 2] = (
            30,
            40,
            170,
        )
        Image.fromarray(img).save(folder / f"{i}.jpg", quality=90)
        out.append((folder / f"{i}.jpg").read_bytes())
    return out


def click_plan(
    frames: list[int], clicks: int, per_frame: int, width: int, height: int, seed: int
) -> list[tuple[int, list[list[float]], list[int]]]:
    """`clicks` prompts ``(frame, full point list, labels)``: on each frame in turn the annotator
    adds points (positive inside the object, negative just outside it, alternating) up to
    `per_frame`, then moves to the next frame (where the list starts again from one click)."""
    rng = np.random.default_rng(seed)
    plan: list[tuple[int, list[list[float]], list[int]]] = []
    visit = 0
    while len(plan) < clicks:
        frame = frames[visit % len(frames)]
        visit += 1
        x0, y0, x1, y1 = object_box(frame, width, height)
        points: list[list[float]] = []
        labels: list[int] = []
        for k in range(per_frame):
            if len(plan) >= clicks:
                break
            if k % 2 == 0:
                x, y = rng.uniform(x0 + 4, x1 - 4), rng.uniform(y0 + 4, y1 - 4)
            else:  # a band around the box, inside the frame
                side = rng.integers(4)
                pad = max(6.0, 0.25 * (x1 - x0))
                if side == 0:
                    x, y = rng.uniform(x0 - pad, x0 - 2), rng.uniform(y0, y1)
                elif side == 1:
                    x, y = rng.uniform(x1 + 2, x1 + pad), rng.uniform(y0, y1)
                elif side == 2:
                    x, y = rng.uniform(x0, x1), rng.uniform(y0 - pad, y0 - 2)
                else:
                    x, y = rng.uniform(x0, x1), rng.uniform(y1 + 2, y1 + pad)
            points.append([float(np.clip(x, 0, width - 1)), float(np.clip(y, 0, height - 1))])
            labels.append(1 if k % 2 == 0 else 0)
            plan.append((frame, [list(p) for p in points], list(labels)))
    return plan


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "median": float("nan"), "p95": float("nan"), "mean": float("nan")}
    arr = np.asarray(values, dtype=np.float64) * 1000.0
    return {
        "n": len(values),
        "median": float(np.median(arr)),
        "p95": float(np.percentile(arr, 95)),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


# --- instrumentation ---------------------------------------------------------------------------


class Probe:
    """Accumulated seconds per label: wrapped functions, model modules, SQL queries."""

    def __init__(self) -> None:
        self.acc: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._starts: dict[int, float] = {}

    def reset(self) -> dict[str, float]:
        out = dict(self.acc)
        out.update({f"#{k}": float(v) for k, v in self.calls.items()})
        self.acc.clear()
        self.calls.clear()
        return out

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.acc[label] += time.perf_counter() - start
                self.calls[label] += 1

        setattr(owner, name, timed)

    def wrap_generator_method(self, owner: Any, name: str, label: str) -> None:
        """Time each step of a generator method (the model's per-frame work in propagate)."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            gen = original(*args, **kwargs)
            while True:
                start = time.perf_counter()
                try:
                    item = next(gen)
                except StopIteration:
                    self.acc[label] += time.perf_counter() - start
                    return
                self.acc[label] += time.perf_counter() - start
                self.calls[label] += 1
                yield item

        setattr(owner, name, timed)

    def hook(self, module: Any, label: str) -> None:
        def pre(mod: Any, _args: Any) -> None:
            self._starts[id(mod)] = time.perf_counter()

        def post(mod: Any, _args: Any, _out: Any) -> None:
            self.acc[label] += time.perf_counter() - self._starts.pop(id(mod))
            self.calls[label] += 1

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)

    def sql(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.acc["sql"] += time.perf_counter() - start
            self.calls["sql"] += 1


def install_probes(probe: Probe, model: Any) -> None:
    """Wrap the serving path's steps and hook the model's modules (see the docstring)."""
    import model.video_predictor as vp
    from engine.annotation import drafts, propagation, serving, sessions
    from engine.jobs import lifecycle
    from model.image_predictor import ImagePredictor

    for name in ("image_encoder", "sam_prompt_encoder", "sam_mask_decoder"):
        probe.hook(getattr(model, name), name)
    probe.hook(model.memory_attention, "memory_attention")
    probe.hook(model.memory_encoder, "memory_encoder")
    probe.wrap(serving, "check_request", "check_request")
    probe.wrap(sessions.LiveSession, "current_log", "session log (fingerprint or read)")
    probe.wrap(sessions, "session_ops", "session_ops (log read)")
    probe.wrap(sessions.LiveSession, "sync", "session sync (incl. replay)")
    probe.wrap(serving, "_video_mask", "model call (video)")
    probe.wrap(serving, "_image_mask", "model call (image)")
    probe.wrap(sessions.LiveSession, "image_predictor", "image predictor lookup/embed")
    probe.wrap(serving, "encode_rle", "encode RLE")
    probe.wrap(drafts, "do_save_edits", "save edit (do_save_edits)")
    probe.wrap(serving, "record_route", "record route (ModelSession)")
    probe.wrap(serving, "model_name", "model_name")
    probe.wrap(vp.VideoSession, "_frame_result", "masks to video res")
    probe.wrap(vp, "fill_holes_in_mask_scores", "fill holes")
    probe.wrap(ImagePredictor, "predict", "image predictor predict")
    probe.wrap(propagation, "session_ops", "session_ops (log read)")
    probe.wrap(propagation, "_begin", "run begin (marker)")
    probe.wrap(propagation, "_open_pass", "run open pass")
    probe.wrap(propagation, "_write_frame", "write frame (DraftEdit)")
    probe.wrap(propagation, "encode_rle", "encode RLE")
    probe.wrap(propagation, "_record_event", "record event")
    probe.wrap(lifecycle.JobReporter, "progress", "job progress")
    probe.wrap_generator_method(vp.VideoSession, "propagate", "model propagate (per frame)")


# --- child: one config -------------------------------------------------------------------------


def _setup_django(env: dict[str, str]) -> None:
    for p in (str(REPO / "platform"), str(REPO)):
        if p not in sys.path:
            sys.path.insert(0, p)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _make_checkpoint(config: str, path: Path) -> None:
    """Random weights in the official format; the object-score head is biased so that the
    object is always present (masks are not empty, as with trained weights)."""
    import torch

    from model.build import build_sam2
    from model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = build_sam2(config)
    head: Any = net.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[2].bias.fill_(30.0)
    save_checkpoint(net, path)


def _record_send(name: str, args: list[Any], queue: str) -> None:
    """TASK_SENDER of the in-process phase: jobs are run in process, nothing is sent."""


class Setup:
    def __init__(self, args: argparse.Namespace, frames: list[bytes]) -> None:
        from engine.accounts.projects import do_create_project, do_create_user, do_set_membership

        self.args = args
        self.frames = frames
        self.manager = do_create_user("bench-manager", "bench-pass", "manager")
        self.user = do_create_user("bench-annotator", "bench-pass", "annotator")
        self.projects: dict[str, Any] = {}
        for name, phase, count in (
            ("serve-p3", 3, len(frames)),
            ("serve-p1", 1, len(frames)),
            ("e2e-warmup", 3, 1),
            ("e2e-p3", 3, len(frames)),
            ("e2e-p1", 1, len(frames)),
            ("e2e-warmed", 3, len(frames)),
        ):
            project = do_create_project(name, self.manager)
            project.phase = phase
            project.save(update_fields=["phase"])
            do_set_membership(project, self.user, "annotator")
            self._video(project, count)
            self.projects[name] = project

    def _video(self, project: Any, count: int) -> Any:
        import io

        from engine.models import Video, frame_key
        from engine.videos import storage

        width, height = self.args.width, self.args.height
        video = Video.objects.create(
            project=project,
            name=f"{project.name}.mp4",
            status=Video.Status.READY,
            width=width,
            height=height,
            frame_count=count,
        )
        for index in range(count):
            storage.put_file(frame_key(video.pk, index), io.BytesIO(self.frames[index]))
        return video


def serve_in_process(setup: Setup, probe: Probe, plan: Any) -> dict[str, Any]:
    """Phase 1 of the docstring: handle_prompt in this process, with its breakdown."""
    from django.db import connection
    from django.test.utils import override_settings
    from django.utils import timezone

    from engine.annotation import drafts, leases, propagation, serving
    from engine.models import Job, ModelSession

    args = setup.args
    user = setup.user
    results: dict[str, Any] = {}

    def run_clicks(
        masklet: Any, tool: str, prompts: Any
    ) -> tuple[list[float], list[dict[str, float]]]:
        times, parts = [], []
        version = masklet.draft_version
        for frame, points, labels in prompts:
            payload = {
                "user_id": user.pk,
                "masklet_id": masklet.pk,
                "base_version": version,
                "frame_index": frame,
                "tool": tool,
                "points": points,
                "labels": labels,
                "box": None,
            }
            # the session's route, as the web side sends it (the worker then writes none)
            route = ModelSession.objects.filter(video_id=masklet.video_id, user=user).first()
            if route is not None:
                age = (timezone.now() - route.last_used).total_seconds()
                payload["route"] = {
                    "worker": route.worker,
                    "model_key": route.model_key,
                    "age": age,
                }
            probe.reset()
            start = time.perf_counter()
            with connection.execute_wrapper(probe.sql):
                reply = serving.handle_prompt(payload, worker=WORKER, queue=f"{WORKER}.dq2")
            times.append(time.perf_counter() - start)
            parts.append(probe.reset())
            if "ok" not in reply:
                raise RuntimeError(f"click refused: {reply}")
            version = reply["ok"]["version"]
        masklet.refresh_from_db()
        return times, parts

    def lease_object(project: Any) -> Any:
        lease = leases.do_take_next_video(user, project)
        assert lease is not None
        return drafts.do_create_object(user, lease, "box")

    # phase 3: video clicks
    masklet = lease_object(setup.projects["serve-p3"])
    first = [(f, pts[:1], labs[:1]) for f, pts, labs in plan["first"]]
    results["video_first"] = run_clicks(masklet, "video_click", first)
    results["video_cached"] = run_clicks(masklet, "video_click", plan["cached"])
    with override_settings(TASK_SENDER="__main__._record_send"):
        job = propagation.do_start_propagation(user, masklet, masklet.draft_version, 0, "forward")
    probe.reset()
    start = time.perf_counter()
    with connection.execute_wrapper(probe.sql):
        propagation.run_propagation_job(job.pk)
    seconds = time.perf_counter() - start
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    results["propagate_inproc"] = {"seconds": seconds, "frames": job.result["frames"]}
    results["propagate_inproc_parts"] = probe.reset()
    masklet.refresh_from_db()
    results["video_corrections"] = run_clicks(masklet, "video_click", plan["corrections"])
    # phase 1: image clicks
    if args.image_clicks:
        masklet = lease_object(setup.projects["serve-p1"])
        results["image_first"] = run_clicks(masklet, "image_click", first)
        results["image_cached"] = run_clicks(masklet, "image_click", plan["image"])
    return results


# --- end to end --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def service(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as fh:
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout} s")
        time.sleep(0.2)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Client:
    """A keep-alive HTTP client with the annotator's token."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, body=data, headers=self.headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # the server closed the idle keep-alive connection (uvicorn: after 5 s): reconnect
            self.conn.close()
            self.conn.request(method, path, body=data, headers=self.headers)
            response = self.conn.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)


def _task_runtimes(log: Path, task: str) -> list[float]:
    pattern = re.compile(re.escape(task) + r"\[[^\]]+\] succeeded in ([0-9.eE+-]+)s")
    return [float(m.group(1)) for m in pattern.finditer(log.read_text(errors="replace"))]


def serve_end_to_end(setup: Setup, plan: Any, env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """Phase 2 of the docstring: uvicorn + Celery workers + an HTTP client."""
    from django.utils.dateparse import parse_datetime
    from rest_framework.authtoken.models import Token

    from engine.annotation import serving
    from engine.jobs.dispatch import call_task
    from engine.models import ModelSession

    args = setup.args
    port = free_port()
    python = sys.executable
    bin_dir = Path(python).parent
    uvicorn = [str(bin_dir / "uvicorn"), "dataengine.asgi:application"]
    uvicorn += ["--host", "127.0.0.1", "--port", str(port)]
    worker = [python, "-m", "celery", "-A", "workers", "worker", "--concurrency", "1"]
    worker += ["--pool", args.pool, "--loglevel", "INFO"]
    worker += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    logs = {name: tmp / f"{name}.log" for name in ("uvicorn", "interactive", "propagate")}
    token = Token.objects.get_or_create(user=setup.user)[0].key
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(service(uvicorn, env, logs["uvicorn"]))
        stack.enter_context(
            service([*worker, "-Q", "interactive", "-n", "inter@%h"], env, logs["interactive"])
        )
        stack.enter_context(
            service([*worker, "-Q", "propagate", "-n", "prop@%h"], env, logs["propagate"])
        )
        wait_for(lambda: _port_open(port), "uvicorn")
        for name in ("interactive", "propagate"):
            wait_for(lambda n=name: " ready." in logs[n].read_text(), f"{name} worker")  # type: ignore[misc]
        client = Client(port, token)

        def lease_object(project: Any) -> int:
            status, lease = client.call("POST", "/api/annotation/next/", {"project": project.pk})
            assert status == 200, (status, lease)
            status, obj = client.call("POST", f"/api/annotation/leases/{lease['id']}/objects/", {})
            assert status in (200, 201), (status, obj)
            lease_of[int(obj["id"])] = int(lease["id"])
            return int(obj["id"])

        def clicks(masklet_id: int, tool: str, prompts: Any) -> tuple[list[float], list[float]]:
            before = len(_task_runtimes(logs["interactive"], serving.PROMPT_TASK))
            times = []
            version = state[masklet_id]
            for frame, points, labels in prompts:
                body = {"base_version": version, "frame_index": frame, "tool": tool}
                body.update(points=points, labels=labels, box=None)
                start = time.perf_counter()
                status, answer = client.call("POST", f"/api/masklets/{masklet_id}/prompt/", body)
                times.append(time.perf_counter() - start)
                assert status == 200, (status, answer)
                version = answer["version"]
            state[masklet_id] = version
            time.sleep(0.5)  # the worker's log line may follow its reply
            worker_times = _task_runtimes(logs["interactive"], serving.PROMPT_TASK)[before:]
            return times, worker_times

        def propagate(masklet_id: int) -> dict[str, Any]:
            body = {"base_version": state[masklet_id], "start_frame": 0, "direction": "forward"}
            start = time.perf_counter()
            status, answer = client.call("POST", f"/api/masklets/{masklet_id}/propagate/", body)
            assert status == 202, (status, answer)
            job_id = answer["job"]["id"]
            while True:
                status, job = client.call("GET", f"/api/jobs/{job_id}/")
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(args.poll)
            seconds = time.perf_counter() - start
            assert job["status"] == "succeeded", job
            created = parse_datetime(job["created_at"])
            started = parse_datetime(job["started_at"])
            finished = parse_datetime(job["finished_at"])
            assert created is not None
            assert started is not None
            assert finished is not None
            status, draft = client.call("GET", f"/api/masklets/{masklet_id}/draft/")
            state[masklet_id] = draft["version"]
            return {
                "seconds": seconds,
                "frames": job["result"]["frames"],
                "queued_s": (started - created).total_seconds(),
                "run_s": (finished - started).total_seconds(),
                "job_id": job_id,
            }

        state: dict[int, int] = defaultdict(int)
        lease_of: dict[int, int] = {}  # masklet id -> its lease id
        # warm-up: uvicorn imports, the interactive worker loads the model (another video)
        warm = lease_object(setup.projects["e2e-warmup"])
        clicks(warm, "video_click", [(0, plan["first"][0][1][:1], [1])])
        # probes: a Celery round trip with a task that fails at once, and a 409 over HTTP
        route = ModelSession.objects.get(user=setup.user, worker__startswith="inter@")
        payload: dict[str, Any] = {"user_id": setup.user.pk, "masklet_id": 0, "base_version": 0}
        payload.update(frame_index=0, tool="video_click", points=[[1, 1]], labels=[1], box=None)
        celery_rt = []
        for _ in range(args.probes):
            start = time.perf_counter()
            reply = call_task(serving.PROMPT_TASK, [payload], queue=route.queue, timeout=30)
            celery_rt.append(time.perf_counter() - start)
            assert "error" in reply, reply
        results["probe_celery"] = celery_rt
        http_409 = []
        stale = {"base_version": 10**6, "frame_index": 0, "tool": "video_click"}
        stale.update(points=[[1, 1]], labels=[1], box=None)
        for _ in range(args.probes):
            start = time.perf_counter()
            status, _ = client.call("POST", f"/api/masklets/{warm}/prompt/", stale)
            http_409.append(time.perf_counter() - start)
            assert status == 409, status
        results["probe_http_409"] = http_409

        masklet_id = lease_object(setup.projects["e2e-p3"])
        first = [(f, pts[:1], labs[:1]) for f, pts, labs in plan["first"]]
        results["video_first"] = clicks(masklet_id, "video_click", first)
        results["video_cached"] = clicks(masklet_id, "video_click", plan["cached"])
        results["propagate_cold"] = propagate(masklet_id)
        results["video_corrections"] = clicks(masklet_id, "video_click", plan["corrections"])
        results["propagate_warm"] = propagate(masklet_id)
        results["propagate_worker_s"] = _task_runtimes(logs["propagate"], "propagate_masklet")
        results["masklet_id"] = masklet_id
        if args.image_clicks:
            masklet_id = lease_object(setup.projects["e2e-p1"])
            results["image_first"] = clicks(masklet_id, "image_click", first)
            results["image_cached"] = clicks(masklet_id, "image_click", plan["image"])
        # the page's warm-up: the cursor rests on a frame never seen, the annotator looks at it
        # for --think s, then clicks (the first click of the session builds it: not timed)
        masklet_id = lease_object(setup.projects["e2e-warmed"])
        lease_id = lease_of[masklet_id]
        clicks(masklet_id, "video_click", first[:1])
        warmed: list[float] = []
        for frame, points, labels in first[1:]:
            status, _ = client.call(
                "POST", f"/api/annotation/leases/{lease_id}/warm/", {"frame_index": frame}
            )
            assert status == 202, status
            time.sleep(args.think)
            warmed += clicks(masklet_id, "video_click", [(frame, points, labels)])[0]
        results["video_warmed"] = warmed
        # first corrections after a propagation: every other tracked frame warmed with the
        # selected object --correction-think s before the click (the page's request when its
        # cursor rests there), the others not; the first request only syncs the session
        propagate(masklet_id)
        warm_url = f"/api/annotation/leases/{lease_id}/warm/"
        assert client.call("POST", warm_url, {"frame_index": first[0][0]})[0] == 202
        corrections: dict[str, list[float]] = {"warmed": [], "cold": []}
        for k, (frame, points, labels) in enumerate(plan["first_corrections"]):
            kind = "cold" if k % 2 else "warmed"
            if kind == "warmed":
                body = {"frame_index": frame, "masklet_id": masklet_id}
                assert client.call("POST", warm_url, body)[0] == 202
            time.sleep(args.correction_think)
            corrections[kind] += clicks(masklet_id, "video_click", [(frame, points, labels)])[0]
        results["correction_warmed"] = corrections["warmed"]
        results["correction_cold"] = corrections["cold"]
    return results


# --- bare model --------------------------------------------------------------------------------


def bare_model(setup: Setup, masklet_id: int, folder: Path) -> dict[str, Any]:
    """The e2e video's saved log replayed (untimed) in a fresh in-process session on the JPEG
    folder; the two propagations timed."""
    import torch

    from engine.annotation.sessions import apply_op, feature_frames, session_ops
    from engine.inference import registry
    from engine.models import Masklet
    from model.frames import FolderFrameSource
    from model.video_predictor import VideoPredictor

    video = Masklet.objects.select_related("video").get(pk=masklet_id).video
    loaded = registry.load_model()
    predictor = VideoPredictor(
        loaded.model, apply_postprocessing=True, feature_cache_size=feature_frames()
    )
    session = predictor.start_session(FolderFrameSource(folder))
    timed: list[dict[str, float]] = []
    with torch.inference_mode():
        for op in session_ops(video):
            if op.kind != "propagate" or op.frame_index != 0 or op.reverse:
                apply_op(session, op)
                continue
            start = time.perf_counter()
            frames = sum(1 for _ in session.propagate(start_frame_idx=0, reverse=False))
            timed.append({"seconds": time.perf_counter() - start, "frames": frames})
    session.close()
    return {"runs": timed}


def bare_clicks(folder: Path, plan: Any) -> list[float]:
    """The floor of a click: ``VideoSession.add_points`` alone (features cached, no stack) on
    the same frames with the same clicks as the cached-path measurement."""
    from engine.annotation.sessions import feature_frames
    from engine.inference import registry
    from model.frames import FolderFrameSource
    from model.video_predictor import VideoPredictor

    loaded = registry.load_model()
    predictor = VideoPredictor(
        loaded.model, apply_postprocessing=True, feature_cache_size=feature_frames()
    )
    session = predictor.start_session(FolderFrameSource(folder))
    for frame, points, labels in plan["first"]:
        session.add_points(frame, 1, np.asarray(points[:1]), np.asarray(labels[:1]))
    times = []
    for frame, points, labels in plan["cached"]:
        start = time.perf_counter()
        result = session.add_points(frame, 1, np.asarray(points), np.asarray(labels))
        _ = result.logits[0, 0].numpy() > 0.0
        times.append(time.perf_counter() - start)
    session.close()
    return times


def cli_predict_video(
    setup: Setup, masklet_id: int, folder: Path, checkpoint: Path, tmp: Path
) -> dict[str, float]:
    """``python -m model predict-video``: the clicks before the first propagation, with and
    without the propagation; the difference is the propagation's wall time."""
    from engine.annotation.sessions import session_ops
    from engine.models import Masklet

    video = Masklet.objects.select_related("video").get(pk=masklet_id).video
    adds = []
    for op in session_ops(video):
        if op.kind == "propagate":
            break
        assert op.kind == "points"
        adds.append(
            {
                "op": "add",
                "frame": op.frame_index,
                "obj_id": op.obj_id,
                "points": [list(p) for p in op.points],
                "labels": list(op.labels),
            }
        )
    walls = {}
    for name, actions in (
        ("clicks", adds),
        ("clicks+propagate", [*adds, {"op": "propagate", "start": 0, "reverse": False}]),
    ):
        path = tmp / f"actions-{len(actions)}.json"
        path.write_text(json.dumps({"actions": actions}))
        argv = [sys.executable, "-m", "model", "predict-video", "--config", setup.args.config]
        argv += ["--checkpoint", str(checkpoint), "--frames", str(folder)]
        argv += ["--prompts", str(path), "--out", str(tmp / "out.npz")]
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, check=True, capture_output=True)
        walls[name] = time.perf_counter() - start
    walls["propagate"] = walls["clicks+propagate"] - walls["clicks"]
    return walls


# --- report ------------------------------------------------------------------------------------


def _parts_table(parts: list[dict[str, float]], total: list[float]) -> list[str]:
    """Median ms per click of each instrumented part (parts overlap: nesting noted)."""
    keys = sorted({k for p in parts for k in p if not k.startswith("#")})
    lines = []
    order = [
        "check_request",
        "session log (fingerprint or read)",
        "session_ops (log read)",
        "session sync (incl. replay)",
        "model call (video)",
        "model call (image)",
        "image predictor lookup/embed",
        "image predictor predict",
        "image_encoder",
        "sam_prompt_encoder",
        "memory_attention",
        "sam_mask_decoder",
        "memory_encoder",
        "fill holes",
        "masks to video res",
        "encode RLE",
        "save edit (do_save_edits)",
        "record route (ModelSession)",
        "model_name",
        "sql",
    ]
    indent = {
        "image_encoder": 2,
        "sam_prompt_encoder": 2,
        "memory_attention": 2,
        "sam_mask_decoder": 2,
        "memory_encoder": 2,
        "fill holes": 2,
        "masks to video res": 2,
        "image predictor predict": 2,
        "image predictor lookup/embed": 2,
        "session_ops (log read)": 2,
    }
    for key in [k for k in order if k in keys] + [k for k in keys if k not in order]:
        values = [p.get(key, 0.0) * 1000 for p in parts]
        calls = [p.get(f"#{key}", 0.0) for p in parts]
        label = (" " * indent.get(key, 0)) + ("SQL queries (all)" if key == "sql" else key)
        lines.append(
            f"    {label:36s} median {np.median(values):8.2f} ms  mean {np.mean(values):8.2f} ms"
            f"  calls/click {np.mean(calls):5.1f}"
        )
    med = np.median(np.asarray(total) * 1000)
    lines.append(f"    {'handler total':36s} median {med:8.2f} ms")
    return lines


def _row(name: str, values: list[float]) -> str:
    s = stats(values)
    if not s["n"]:
        return f"  {name:44s} (none)"
    return (
        f"  {name:44s} n={s['n']:4d}  median {s['median']:9.1f} ms  p95 {s['p95']:9.1f} ms"
        f"  max {s['max']:9.1f} ms"
    )


def child(args: argparse.Namespace) -> None:
    tmp = Path(args.tmp)
    folder = tmp / "frames"
    frames = make_frames(folder, args.frames, args.width, args.height)
    checkpoint = tmp / f"{args.config}.pt"
    _make_checkpoint(args.config, checkpoint)
    env = {
        "DJANGO_SETTINGS_MODULE": "dataengine.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "DATA_DIR": str(tmp / "data"),
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.redis,
        "SAM2_CHECKPOINT": str(checkpoint),
        "SAM2_CONFIG": args.config,
        "SAM2_DEVICE": "cpu",
        "ANNOTATION_WARM_FRAMES": "0",
        # a click that re-runs a propagation in the interactive worker (the first one after a
        # propagation) would otherwise fall back to the shared queue after 5 s: see the README
        "ANNOTATION_DIRECT_TIMEOUT_SECONDS": str(args.direct_timeout),
        "ANNOTATION_PROMPT_TIMEOUT_SECONDS": str(args.direct_timeout + 60),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "platform")]),
    }
    _setup_django(env)
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    from engine.inference import registry

    setup = Setup(args, frames)
    loaded = registry.load_model()
    probe = Probe()
    install_probes(probe, loaded.model)
    cond = sorted({round(i * args.frames / args.first_frames) for i in range(args.first_frames)})
    tracked = [f for f in range(args.frames - 1, -1, -1) if f not in cond][: max(1, len(cond) - 1)]
    plan = {
        "first": click_plan(cond, len(cond), 1, args.width, args.height, 1),
        "cached": click_plan(cond, args.clicks, args.points_per_frame, args.width, args.height, 2),
        "corrections": click_plan(
            tracked, args.corrections, args.points_per_frame, args.width, args.height, 3
        ),
        "image": click_plan(
            cond, args.image_clicks, args.points_per_frame, args.width, args.height, 4
        ),
        "first_corrections": click_plan(
            [f for f in range(args.frames) if f not in cond] * 2,
            2 * (args.frames - len(cond)),
            1,
            args.width,
            args.height,
            5,
        ),
    }
    t0 = time.perf_counter()
    server = serve_in_process(setup, probe, plan)
    print(f"[{args.config}] server-side phase {time.perf_counter() - t0:.0f} s", flush=True)
    for key, value in server.items():
        if isinstance(value, tuple):
            print(_row(f"  server {key}", value[0]), flush=True)
    t0 = time.perf_counter()
    e2e = serve_end_to_end(setup, plan, {**os.environ, **env}, tmp)
    print(f"[{args.config}] end-to-end phase {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    bare = bare_model(setup, e2e["masklet_id"], folder)
    floor = bare_clicks(folder, plan)
    cli = cli_predict_video(setup, e2e["masklet_id"], folder, checkpoint, tmp) if args.cli else {}
    print(f"[{args.config}] bare-model phase {time.perf_counter() - t0:.0f} s", flush=True)

    cfg = loaded.model.image_size
    print()
    print(
        f"== {args.config} at {cfg} px, video {args.width}x{args.height}, {args.frames} frames; "
        f"clicked frames {cond}, correction frames {tracked}; torch threads "
        f"{__import__('torch').get_num_threads()}; database {args.database}"
    )
    print("Click to mask (server = handle_prompt in process; e2e = HTTP POST through uvicorn +")
    print("Celery interactive worker on Redis; worker = the task's own run time in the worker):")
    rows = [
        ("video_first", "video click, frame never seen (first mask)"),
        ("video_cached", "video click, cached features"),
        ("video_corrections", "video correction on a tracked frame"),
        ("image_first", "image click, frame never seen (first mask)"),
        ("image_cached", "image click, cached features"),
    ]
    summary: dict[str, Any] = {"config": args.config, "image_size": cfg}
    for key, label in rows:
        if key not in server:
            continue
        print(_row(f"server {label}", server[key][0]))
        print(_row(f"e2e    {label}", e2e[key][0]))
        print(_row(f"worker {label}", e2e[key][1]))
        summary[key] = {"server": stats(server[key][0]), "e2e": stats(e2e[key][0])}
    if e2e.get("video_warmed"):
        label = f"e2e    video click on a frame warmed {args.think:g} s before"
        print(_row(label, e2e["video_warmed"]))
        summary["video_warmed"] = stats(e2e["video_warmed"])
    for key, label in (
        (
            "correction_warmed",
            f"first correction, frame + object warmed {args.correction_think:g} s before",
        ),
        ("correction_cold", "first correction, not warmed"),
    ):
        if e2e.get(key):
            print(_row(f"e2e    {label}", e2e[key]))
            summary[key] = stats(e2e[key])
    print(_row("bare model: VideoSession.add_points, cached", floor))
    summary["bare_click"] = stats(floor)
    print(_row("probe: Celery round trip (task fails at once)", e2e["probe_celery"]))
    print(_row("probe: HTTP 409 after web-side checks", e2e["probe_http_409"]))
    summary["probe_celery"] = stats(e2e["probe_celery"])
    summary["probe_http_409"] = stats(e2e["probe_http_409"])
    for key in ("video_cached", "video_corrections", "image_cached"):
        if key in server:
            n = len(server[key][0])
            q = max(1, n // 4)
            early = np.median(server[key][0][:q]) * 1000
            late = np.median(server[key][0][-q:]) * 1000
            print(
                f"  server {key}: median of the first {q} clicks {early:.1f} ms, "
                f"of the last {q} {late:.1f} ms"
            )
    for key in ("video_cached", "video_corrections", "image_cached"):
        if key in server:
            print(f"Server-side breakdown, {key} (per click):")
            print("\n".join(_parts_table(server[key][1], server[key][0])))
    print("Propagation, forward from frame 0 over every frame:")
    n = args.frames
    inproc = server["propagate_inproc"]
    parts = server["propagate_inproc_parts"]
    print(
        f"  stack in process (run_propagation_job): {inproc['seconds']:.2f} s, "
        f"{inproc['frames'] / inproc['seconds']:.3f} fps"
    )
    for key in sorted(k for k in parts if not k.startswith("#")):
        print(f"    {key:36s} {parts[key]:8.3f} s  calls {int(parts.get('#' + key, 0))}")
    bare_runs = bare["runs"]
    for i, key in enumerate(("propagate_cold", "propagate_warm")):
        run = e2e[key]
        base = bare_runs[i]["seconds"] if i < len(bare_runs) else float("nan")
        overhead = 100.0 * (run["seconds"] - base) / base
        print(
            f"  e2e {key[10:]:4s}: request -> succeeded {run['seconds']:.2f} s "
            f"({run['frames'] / run['seconds']:.3f} fps; queued {run['queued_s']:.2f} s, job run "
            f"{run['run_s']:.2f} s) vs bare session {base:.2f} s "
            f"({bare_runs[i]['frames'] / base:.3f} fps): overhead {overhead:+.1f}%"
        )
        summary[key] = {
            "stack_s": run["seconds"],
            "frames": run["frames"],
            "bare_s": base,
            "overhead_pct": overhead,
        }
    print(f"  propagate worker task run times: {[round(v, 2) for v in e2e['propagate_worker_s']]}")
    if cli:
        print(
            f"  python -m model predict-video: clicks only {cli['clicks']:.2f} s, clicks + "
            f"propagate {cli['clicks+propagate']:.2f} s -> propagation {cli['propagate']:.2f} s "
            f"({n / cli['propagate']:.3f} fps)"
        )
        summary["cli_propagate_s"] = cli["propagate"]
    print("RESULT " + json.dumps(summary), flush=True)


# --- parent ------------------------------------------------------------------------------------


def _postgres_db(base_url: str, name: str, create: bool) -> str:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["test_tiny", "sam2.1_hiera_t"])
    parser.add_argument("--clicks", type=int, default=200, help="video clicks, cached features")
    parser.add_argument("--image-clicks", type=int, default=200, help="image clicks (phase 1)")
    parser.add_argument("--corrections", type=int, default=20, help="clicks on tracked frames")
    parser.add_argument("--first-frames", type=int, default=4, help="frames clicked first")
    parser.add_argument("--points-per-frame", type=int, default=6)
    parser.add_argument("--frames", type=int, default=10, help="video length (propagation)")
    parser.add_argument("--video-size", default="854x480", help="W x H of the video frames")
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--poll", type=float, default=0.3, help="job polling (s; the page: 0.3)")
    parser.add_argument(
        "--think", type=float, default=3.0, help="s between a frame warm-up and the click there"
    )
    parser.add_argument(
        "--correction-think",
        type=float,
        default=6.0,
        help="s between a correction's warm-up (frame + object) and its click",
    )
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo"])
    parser.add_argument("--database", default="postgres", choices=["postgres", "sqlite"])
    parser.add_argument("--postgres", default=POSTGRES_DEFAULT, help="server URL (any database)")
    parser.add_argument("--redis", default=REDIS_DEFAULT)
    parser.add_argument("--no-cli", dest="cli", action="store_false")
    parser.add_argument(
        "--direct-timeout",
        type=float,
        default=600.0,
        help="ANNOTATION_DIRECT_TIMEOUT_SECONDS of the stack (default 5 s in the settings)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (worker logs)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="test_tiny 200 clicks, hiera_t 20 clicks / 4 corrections / 4 frames",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.width, args.height = (int(v) for v in args.video_size.split("x"))
    if args.child:
        child(args)
        return
    summaries: list[dict[str, Any]] = []
    for config in args.configs:
        overrides: list[str] = []
        if args.quick and config != "test_tiny":
            overrides = ["--clicks", "20", "--image-clicks", "20", "--corrections", "4"]
            overrides += ["--frames", "4", "--first-frames", "2", "--probes", "10"]
        tmp = Path(tempfile.mkdtemp(prefix="bench-interactive-"))
        db_name = f"bench_interactive_{os.getpid()}_{len(summaries)}"
        if args.database == "postgres":
            url = _postgres_db(args.postgres, db_name, create=True)
        else:
            url = f"sqlite:///{tmp}/bench.sqlite3"
        argv = [sys.executable, __file__, *sys.argv[1:], "--child", "--config", config]
        argv = [a for a in argv if a != "--quick"] + overrides
        argv += ["--tmp", str(tmp), "--database-url", url]
        start = time.perf_counter()
        try:
            with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    if line.startswith("RESULT "):
                        summaries.append(json.loads(line[7:]))
                    else:
                        print(line, end="", flush=True)
            if proc.returncode:
                raise SystemExit(f"{config}: the benchmark child failed ({proc.returncode})")
        finally:
            if args.database == "postgres":
                _postgres_db(args.postgres, db_name, create=False)
            if args.keep:
                print(f"[{config}: logs and data kept in {tmp}]")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        print(f"[{config}: {time.perf_counter() - start:.0f} s in all]", flush=True)
    print()
    print("| config | px | path | server median / p95 ms | e2e median / p95 ms |")
    print("|---|---|---|---|---|")
    for s in summaries:
        for key in (
            "video_first",
            "video_cached",
            "video_corrections",
            "image_first",
            "image_cached",
        ):
            if key in s:
                sv, ev = s[key]["server"], s[key]["e2e"]
                print(
                    f"| {s['config']} | {s['image_size']} | {key} (n={ev['n']}) | "
                    f"{sv['median']:.1f} / {sv['p95']:.1f} | {ev['median']:.1f} / {ev['p95']:.1f} |"
                )
    print()
    print("| config | px | run | frames | stack s | bare s | overhead |")
    print("|---|---|---|---|---|---|---|")
    for s in summaries:
        for key in ("propagate_cold", "propagate_warm"):
            r = s[key]
            print(
                f"| {s['config']} | {s['image_size']} | {key[10:]} | {r['frames']} | "
                f"{r['stack_s']:.2f} | {r['bare_s']:.2f} | {r['overhead_pct']:+.1f}% |"
            )


if __name__ == "__main__":
    main()
