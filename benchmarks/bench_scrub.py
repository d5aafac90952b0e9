"""Scrubbing and playing a long video in the annotator's workspace, in real Chromium.

A clip of ``--frames`` frames (ffmpeg's testsrc2 at ``--size``, ``--fps``) is ingested through
the pipeline (upload, ffprobe, ffmpeg decode to JPEG frames in storage), the platform runs under
uvicorn as ``make run`` starts it (SQLite, no model: scrubbing needs none), and Chromium
(Playwright, ``/usr/bin/chromium``) opens the workspace as an annotator who took the video.

    .venv/bin/python benchmarks/bench_scrub.py --frames 1000

Measured, with the page's own clock (``performance.now``):

- **step scrub**: the cursor moved one position at a time across the whole video, each move
  waiting for its frame: time from the cursor change to the frame drawn (median, p95, max);
- **drag scrub**: the scrubber dragged end to end with the mouse in ``--drag-seconds``: for each
  cursor change, the time until something of that frame is on the stage (a thumbnail preview
  or the frame) and until the full frame is, how many positions were passed over before being
  drawn, the longest time without a new picture while the cursor moved, and the time from the
  last move to the full frame;
- **jumps**: ``--jumps`` random positions, each waiting for its frame (cold, uncached frames);
- **playback** from frame 0 for ``--play-seconds``: frames shown against the video's fps;
- the frame cache's largest size against its bound, and the requests for full frames vs
  thumbnails (what the timeline and previews load).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]

from benchmarks.server_env import server_env  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]
WS = "(await import(document.querySelector('script[src*=\"js/annotator/main.js\"]').src)).workspace"

# In-page probes: every cursor change (the scrubber's input events and the workspace's own
# moves) and every picture drawn on the stage, with performance.now() times.
PROBE_JS = f"""async () => {{
  const ws = {WS};
  const log = {{ inputs: [], draws: [], previews: [], cacheMax: 0 }};
  window.__scrub = log;
  const stage = document.getElementById('stage');
  new MutationObserver((records) => {{
    const t = performance.now();
    for (const r of records) {{
      if (r.attributeName === 'data-frame') log.draws.push([Number(stage.dataset.frame), t]);
      if (r.attributeName === 'data-preview' && stage.dataset.preview !== '')
        log.previews.push([Number(stage.dataset.preview), t]);
    }}
  }}).observe(stage, {{ attributes: true, attributeFilter: ['data-frame', 'data-preview'] }});
  document.getElementById('scrubber').addEventListener('input', (e) => {{
    log.inputs.push([Number(e.target.value), performance.now()]);
  }}, true);
  setInterval(() => {{ log.cacheMax = Math.max(log.cacheMax, ws.frames.size); }}, 5);
  return {{ capacity: ws.frames.capacity, count: ws.count, fps: ws.video.fps }};
}}"""

STEP_JS = f"""async ([positions]) => {{
  const ws = {WS};
  const stage = document.getElementById('stage');
  const scrubber = document.getElementById('scrubber');
  const times = [];
  for (const i of positions) {{
    const t0 = performance.now();
    scrubber.value = String(i);
    scrubber.dispatchEvent(new Event('input'));
    while (stage.dataset.frame !== String(i)) await new Promise((r) => setTimeout(r, 0));
    times.push(performance.now() - t0);
    window.__scrub.cacheMax = Math.max(window.__scrub.cacheMax, ws.frames.size);
  }}
  return times;
}}"""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add = parser.add_argument
    add("--frames", type=int, default=1000, help="frames of the video")
    add("--size", default="640x360", help="frame size WxH")
    add("--fps", type=float, default=25.0, help="the video's (and the project's) fps")
    add("--port", type=int, default=8630, help="uvicorn's port")
    add("--drag-seconds", type=float, default=4.0, help="one drag of the scrubber end to end")
    add("--jumps", type=int, default=40, help="random cursor jumps")
    add("--play-seconds", type=float, default=8.0, help="playback measured")
    add("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    return parser.parse_args()


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   "
        f"max {ordered[-1]:7.1f} ms   (n={len(ordered)})"
    )


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _service(argv: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("w") as fh:
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def _make_clip(path: Path, frames: int, size: str, fps: float) -> None:
    seconds = frames / fps
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi"]
        + ["-i", f"testsrc2=size={size}:rate={fps:g}", "-t", f"{seconds:.6f}"]
        + ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )


def _setup(args: argparse.Namespace, tmp: Path) -> tuple[int, float]:
    """Migrate, users, a project at ``--fps``, the clip ingested: (video id, ingest seconds)."""
    import django

    django.setup()
    from django.core.management import call_command

    from engine.accounts.projects import do_create_project, do_create_user, do_set_membership
    from engine.models import Job, Video
    from engine.videos import ingest

    call_command("migrate", verbosity=0)
    manager = do_create_user("manager", "manager-pass", "manager")
    annotator = do_create_user("alice", "alice-pass", "annotator")
    project = do_create_project("Scrub", manager, annotation_fps=args.fps)
    do_set_membership(project, annotator, "annotator")
    clip = tmp / "clip.mp4"
    _make_clip(clip, args.frames, args.size, args.fps)
    start = time.perf_counter()
    with clip.open("rb") as fh:
        video = ingest.do_upload_video(project, manager, "clip.mp4", fh, clip.stat().st_size)
    ingest.run_ingest_job(Job.objects.get(video=video).pk)
    seconds = time.perf_counter() - start
    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error
    return int(video.pk), seconds


def _drag(page: Any, seconds: float) -> None:
    """Press the scrubber's thumb at its left end and drag it to the right end."""
    scrubber = page.locator("#scrubber")
    scrubber.scroll_into_view_if_needed()
    box = scrubber.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    x0, x1 = box["x"] + 4, box["x"] + box["width"] - 4
    page.mouse.move(x0, y)
    page.mouse.down()
    moves = max(10, int(seconds * 60))
    start = time.perf_counter()
    for k in range(1, moves + 1):
        page.mouse.move(x0 + (x1 - x0) * k / moves, y)
        delay = start + seconds * k / moves - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    page.mouse.up()


def _drag_figures(log: dict[str, Any], start_t: float) -> dict[str, Any]:
    inputs = [(v, t) for v, t in log["inputs"] if t >= start_t]
    draws = [(f, t) for f, t in log["draws"] if t >= start_t]
    previews = [(f, t) for f, t in log["previews"] if t >= start_t]
    shown = sorted(draws + previews, key=lambda d: d[1])
    full, first, passed = [], [], 0
    for n, (value, t) in enumerate(inputs):
        until = inputs[n + 1][1] if n + 1 < len(inputs) else float("inf")
        drawn = next((d for f, d in draws if f == value and d >= t), None)
        seen = next((d for f, d in shown if f == value and d >= t), None)
        if seen is not None and seen <= until:
            first.append(seen - t)
        else:
            passed += 1
        if drawn is not None and drawn <= until:
            full.append(drawn - t)
    times = [t for _, t in inputs]
    gaps = []
    if times:
        marks = [times[0]] + [t for _, t in shown if times[0] <= t <= times[-1]] + [times[-1]]
        gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    last_value, last_t = inputs[-1] if inputs else (None, 0.0)
    settle = next((d - last_t for f, d in draws if f == last_value and d >= last_t), None)
    return {
        "inputs": len(inputs),
        "first": first,
        "full": full,
        "passed": passed,
        "longest_gap": max(gaps) if gaps else None,
        "settle": settle,
    }


def _open(browser: Any, port: int, requests: list[str]) -> tuple[Any, Any]:
    """A fresh browser context (empty caches) logged in as the annotator, on the workspace."""
    context = browser.new_context(
        base_url=f"http://127.0.0.1:{port}", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto("/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/annotate/")
    page.click("button.take-next")  # "Next video", then "Continue my video"
    page.wait_for_url("**/annotate/*/")
    page.wait_for_selector("#workspace[data-ready='true']")
    return context, page


def _browse(args: argparse.Namespace, video_id: int, port: int) -> dict[str, Any]:
    """Each scenario in a fresh browser context, so none starts with another's cached frames."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    out: dict[str, Any] = {"cache_max": 0}

    def scenario() -> Any:
        requests.clear()
        context, page = _open(browser, port, requests)
        page.wait_for_timeout(1500)  # the timeline's thumbnails load after the first frame
        out["info"] = page.evaluate(PROBE_JS)
        requests.clear()
        return context, page

    def done(context: Any, page: Any) -> None:
        out["cache_max"] = max(out["cache_max"], page.evaluate("() => window.__scrub.cacheMax"))
        context.close()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opened = time.perf_counter()
        context, page = _open(browser, port, requests)
        out["open_s"] = time.perf_counter() - opened
        page.wait_for_timeout(1500)
        out["load_requests"] = _count(requests, video_id)
        context.close()

        context, page = scenario()
        count = out["info"]["count"]
        positions = list(range(1, count)) + list(range(count - 2, -1, -1))
        out["step"] = page.evaluate(STEP_JS, [positions])
        out["step_requests"] = _count(requests, video_id)
        done(context, page)

        context, page = scenario()
        start_t = page.evaluate("() => performance.now()")
        _drag(page, args.drag_seconds)
        page.wait_for_timeout(3000)
        out["drag"] = _drag_figures(page.evaluate("() => window.__scrub"), start_t)
        out["drag_requests"] = _count(requests, video_id)
        out["drag_requests"]["started"] = page.evaluate(
            f"async () => {{ const ws = {WS}; return ws.feed ? ws.feed.requested : -1; }}"
        )
        done(context, page)

        context, page = scenario()
        rng = random.Random(7)
        jumps = [rng.randrange(count) for _ in range(args.jumps)]
        out["jumps"] = page.evaluate(STEP_JS, [jumps])
        out["jump_requests"] = _count(requests, video_id)
        done(context, page)

        context, page = scenario()
        start_t = page.evaluate("() => performance.now()")
        page.click("#play")
        page.wait_for_timeout(args.play_seconds * 1000)
        page.click("#play")
        end_t = page.evaluate("() => performance.now()")
        log = page.evaluate("() => window.__scrub")
        played = [f for f, t in log["draws"] if start_t <= t <= end_t]
        out["play"] = {
            "shown": len(played),
            "distinct": len(set(played)),
            "seconds": (end_t - start_t) / 1000,
            "last": played[-1] if played else None,
        }
        out["play_requests"] = _count(requests, video_id)
        done(context, page)
        browser.close()
    out.update(out.pop("info"))
    return out


def _count(urls: list[str], video_id: int) -> dict[str, int]:
    frames = sum(f"/videos/{video_id}/frames/" in u for u in urls)
    thumbs = sum(f"/videos/{video_id}/thumbs/" in u for u in urls)
    return {"full": frames, "thumb": thumbs}


def _report(args: argparse.Namespace, ingest_s: float, out: dict[str, Any]) -> None:
    count, fps = out["count"], out["fps"]
    print(
        f"Video: {count} frames {args.size} at {fps:g} fps; ingest through the pipeline "
        f"{ingest_s:.1f} s; workspace open (take next -> ready) {out['open_s']:.2f} s"
    )
    load = out["load_requests"]
    print(f"Page load: {load['full']} full-frame and {load['thumb']} thumbnail requests")
    print("Cursor change -> frame drawn")
    print(f"  step scrub end to end and back : {_stats(out['step'])}")
    r = out["step_requests"]
    print(f"    requests: {r['full']} full frames, {r['thumb']} thumbnails")
    d = out["drag"]
    print(f"  drag scrub ({args.drag_seconds:g} s, {d['inputs']} cursor changes):")
    print(f"    first picture (thumbnail or frame): {_stats(d['first'])}")
    print(f"    full frame before the next change : {_stats(d['full'])}")
    print(f"    positions passed before any picture: {d['passed']} of {d['inputs']}")
    gap = d["longest_gap"]
    settle = d["settle"]
    print(
        f"    longest time without a new picture while dragging: "
        f"{'n/a' if gap is None else f'{gap:.1f} ms'}; last change -> full frame: "
        f"{'never' if settle is None else f'{settle:.1f} ms'}"
    )
    r = out["drag_requests"]
    print(
        f"    requests: {r['full']} full frames ({r['started']} frame loads started by the page "
        f"since it opened), {r['thumb']} thumbnails"
    )
    print(f"  random jumps                   : {_stats(out['jumps'])}")
    r = out["jump_requests"]
    print(f"    requests: {r['full']} full frames, {r['thumb']} thumbnails")
    p = out["play"]
    expected = min(count - 1, p["seconds"] * fps)
    print(
        f"Playback {p['seconds']:.1f} s at {fps:g} fps: {p['distinct']} frames shown of "
        f"{expected:.0f} expected ({100 * p['distinct'] / max(1, expected):.0f}%), "
        f"last frame {p['last']}"
    )
    r = out["play_requests"]
    print(f"    requests: {r['full']} full frames, {r['thumb']} thumbnails")
    held = "held" if out["cache_max"] <= out["capacity"] else "EXCEEDED"
    print(
        f"Frame cache: at most {out['cache_max']} frames of a bound of {out['capacity']} ({held})"
    )


def main() -> None:
    args = _arguments()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} missing (Debian's chromium)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scrub-"))
    env = server_env(str(tmp / "data"))
    os.environ.update(env)
    try:
        video_id, ingest_s = _setup(args, tmp)
        if _port_open(args.port):
            sys.exit(f"port {args.port} is taken")
        uvicorn = [str(Path(sys.executable).parent / "uvicorn"), "dataengine.asgi:application"]
        uvicorn += ["--host", "127.0.0.1", "--port", str(args.port), "--log-level", "warning"]
        with _service(uvicorn, env, tmp / "uvicorn.log"):
            deadline = time.monotonic() + 60
            while not _port_open(args.port):
                if time.monotonic() > deadline:
                    sys.exit(f"uvicorn did not start; see {tmp / 'uvicorn.log'}")
                time.sleep(0.2)
            out = _browse(args, video_id, args.port)
        _report(args, ingest_s, out)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
