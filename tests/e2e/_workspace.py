"""Helpers shared by the annotator-workspace browser tests: the page's workspace module, its
masks read back as arrays, screenshots, and waits on the page's state."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", Path(tempfile.gettempdir()) / "annotator-shots"))
MAIN = "js/annotator/main.js"
#: A JS expression giving the page's workspace object (inside an async function).
WS = f"(await import(document.querySelector('script[src*=\"{MAIN}\"]').src)).workspace"

# The page's masks (the workspace's maskOf) as "0"/"1" strings: Playwright serialises a long
# array of numbers element by element, which takes about a second per 320x240 mask.
_MASKS_JS = f"""async ([id, frames]) => {{
    const ws = {WS};
    return frames.map((f) => {{
        const m = ws.maskOf(id, f);
        return m === null ? null : m.map((v) => (v ? "1" : "0")).join("");
    }});
}}"""


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_ready(page: Any) -> None:
    page.wait_for_selector("#workspace[data-ready='true']")


def wait_frame(page: Any, frame: int) -> None:
    page.wait_for_function(f"document.getElementById('stage').dataset.frame === '{frame}'")


def settled(page: Any) -> None:
    page.evaluate(f"async () => {{ await ({WS}).settled(); }}")


def _decode(text: str | None, hw: tuple[int, int]) -> np.ndarray | None:
    if text is None:
        return None
    return (np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")).reshape(hw)


def page_masks(
    page: Any, masklet_id: int, frames: list[int], hw: tuple[int, int]
) -> list[np.ndarray | None]:
    """The page's masks of one object on `frames` (None where it has none), `hw` = (H, W)."""
    return [_decode(t, hw) for t in page.evaluate(_MASKS_JS, [masklet_id, frames])]


def page_mask(page: Any, masklet_id: int, frame: int, hw: tuple[int, int]) -> np.ndarray | None:
    return page_masks(page, masklet_id, [frame], hw)[0]


def drag(page: Any, points: list[tuple[float, float]]) -> None:
    """Press, move through the image points and release, in page coordinates."""
    client = [
        page.evaluate(f"async ([x, y]) => ({WS}).imageToClient(x, y)", list(p)) for p in points
    ]
    page.mouse.move(*client[0])
    page.mouse.down()
    for x, y in client[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def install_frame_delay(env: str) -> None:
    """In a propagate worker started with ``--include`` a test module that calls this, and with
    ``env`` set to seconds: wait that long before each propagated frame is saved, so a test can
    act (kill the worker, cancel the job) mid-run. Nothing happens where ``env`` is unset."""
    delay = float(os.environ.get(env) or 0)
    if delay <= 0:
        return
    import time

    from engine.annotation import propagation

    write = propagation._write_frame

    def slow_write(*args: Any, **kwargs: Any) -> None:
        time.sleep(delay)
        write(*args, **kwargs)

    propagation._write_frame = slow_write


def cut_box_clip(box_clip: Path, clips_dir: Path, seconds: float, size: tuple[int, int]) -> Path:
    """The first ``seconds`` of opencv-doc's box.mp4 (real footage) at ``size`` (W, H), no audio,
    made once per session folder."""
    width, height = size
    out = clips_dir / f"box-{seconds:g}s-{width}x{height}.mp4"
    if not out.exists():
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(box_clip), "-t", str(seconds)]
            + ["-an", "-vf", f"scale={width}:{height}", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
            + ["-movflags", "+faststart", str(out)],
            check=True,
        )
    return out


def ingest_clip(
    project: Any, manager: Any, clip: Path, seconds: float, size: tuple[int, int]
) -> Any:
    """Upload and decode ``clip`` through the real pipeline (the ingest job's function, run
    here); the video is ready, ``size`` (W, H) and ``seconds`` long at the project's fps."""
    from engine.models import Job, Video
    from engine.videos import ingest

    with clip.open("rb") as fh:
        video = ingest.do_upload_video(project, manager, "box.mp4", fh, clip.stat().st_size)
    ingest.run_ingest_job(Job.objects.get(video=video).pk)
    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error
    assert (video.width, video.height) == size
    assert video.frame_count == round(seconds * project.annotation_fps)
    return video
