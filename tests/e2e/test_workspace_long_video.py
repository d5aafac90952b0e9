"""In real Chromium against the live server: a 200-frame video (ffmpeg's test pattern, ingested
through the pipeline) scrubbed end to end with the mouse, jumped around and played.

The workspace's frame cache never holds more than its bound; the timeline is made of
thumbnails (the film strip and the hover preview request /videos/<id>/thumbs/, never a full
frame), a drag never has more than one cursor load and four prefetches running and ends on the
cursor's frame, and playback moves on. ``benchmarks/bench_scrub.py`` measures the same on
1,000 frames. Screenshots go to ``$E2E_SCREENSHOTS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.models import Job, Project, Video
from engine.videos import ingest
from tests.conftest import make_clip
from tests.e2e._workspace import WS, shot, wait_frame, wait_ready
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FRAMES, FPS = 200, 25


@pytest.fixture(scope="session")
def long_clip(clips_dir: Path) -> Path:
    """8 s of ffmpeg's test pattern at 25 fps, 320x180: 200 frames."""
    return make_clip(clips_dir / "long.mp4", seconds=FRAMES / FPS, size="320x180", rate=FPS)


def _requests(urls: list[str], video: Video) -> tuple[int, int]:
    """(full-frame requests, thumbnail requests) among ``urls``."""
    full = sum(f"/videos/{video.pk}/frames/" in u for u in urls)
    thumbs = sum(f"/videos/{video.pk}/thumbs/" in u for u in urls)
    return full, thumbs


def _cache(page: Any) -> tuple[int, int]:
    """The workspace's frame cache: (frames held, its bound)."""
    size, capacity = page.evaluate(
        f"async () => {{ const f = ({WS}).frames; return [f.size, f.capacity]; }}"
    )
    return int(size), int(capacity)


def test_long_video_scrub_keeps_the_cache_bound_and_the_timeline_uses_thumbnails(
    page: Any, project: Project, manager: Any, annotator: Any, long_clip: Path
) -> None:
    project.annotation_fps = FPS
    project.save(update_fields=["annotation_fps"])
    with long_clip.open("rb") as fh:
        video = ingest.do_upload_video(project, manager, "long.mp4", fh, long_clip.stat().st_size)
    ingest.run_ingest_job(Job.objects.get(video=video).pk)
    video.refresh_from_db()
    assert video.frame_count == FRAMES

    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    # the live server's first request imports the URL conf (torch, through the model routes)
    page.goto("/login/", timeout=120_000)
    log_in(page, "alice", "alice-pass")
    page.goto("/annotate/")
    page.click("button.take-next")
    page.wait_for_url("**/annotate/*/")
    wait_ready(page)
    wait_frame(page, 0)

    # the film strip: evenly spaced thumbnails drawn from the thumbnail route only
    strip = page.locator("#timeline-strip")
    page.wait_for_function(
        "() => document.getElementById('timeline-strip').dataset.frames !== undefined"
    )
    shown = [int(f) for f in (strip.get_attribute("data-frames") or "").split(",")]
    assert 5 <= len(shown) <= 40, shown
    assert shown == sorted(set(shown))
    assert shown[-1] < FRAMES
    page.wait_for_function(
        f"() => performance.getEntriesByType('resource')"
        f".filter((e) => e.name.includes('/videos/{video.pk}/thumbs/')).length >= {len(shown)}"
    )
    full, thumbs = _requests(urls, video)
    assert thumbs == len(shown)
    assert full <= 16, full  # the first frame and its prefetch, never a frame per strip slot
    # the strip's thumbnails are drawn (not blank)
    lit = page.evaluate(
        "() => { const c = document.getElementById('timeline-strip');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let k = 0; k < d.length; k += 4)"
        " if (d[k] + d[k + 1] + d[k + 2] > 200) n++;"
        " return n; }"
    )
    assert lit > 100, lit
    shot(page, "long-video-strip")

    # hovering over the strip previews the hovered frame's thumbnail
    urls.clear()
    strip.scroll_into_view_if_needed()
    box = strip.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    preview = page.locator("#timeline-preview")
    preview.wait_for(state="visible")
    hovered = int(preview.get_attribute("data-frame") or -1)
    assert abs(hovered - FRAMES // 2) <= 2, hovered
    page.wait_for_function(
        f"() => performance.getEntriesByType('resource')"
        f".some((e) => e.name.endsWith('/thumbs/{hovered}.jpg'))"
    )
    assert _requests(urls, video)[0] == 0  # no full frame for a preview
    shot(page, "long-video-preview")
    page.mouse.move(10, 10)
    preview.wait_for(state="hidden")

    # drag the scrubber end to end: the cache stays bounded, loads never pile up, the drag
    # ends on the last frame
    scrubber = page.locator("#scrubber")
    scrubber.scroll_into_view_if_needed()
    box = scrubber.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.evaluate(  # the cache's largest size, sampled in the page while it works
        f"async () => {{ const ws = {WS}; window.__cacheMax = 0; window.__loadsMax = 0;"
        " setInterval(() => { window.__cacheMax = Math.max(window.__cacheMax, ws.frames.size);"
        " window.__loadsMax = Math.max(window.__loadsMax, ws.frames.loading); }, 2); }"
    )
    page.mouse.move(box["x"] + 3, y)  # a hover: its preview may load
    preview.wait_for(state="visible")
    start_preview = f"/thumbs/{preview.get_attribute('data-frame')}.jpg"
    page.mouse.down()
    urls.clear()
    page.mouse.move(box["x"] + box["width"] - 3, y, steps=80)
    page.mouse.up()
    wait_frame(page, FRAMES - 1)
    size, capacity = _cache(page)
    assert page.evaluate("() => window.__cacheMax") <= capacity
    # (the hover's own request may reach this listener after the drag began)
    full, thumbs = _requests([u for u in urls if not u.endswith(start_preview)], video)
    assert thumbs == 0  # no previews while dragging
    # no pile-up: one cursor load at a time plus at most 4 prefetches (the old page started a
    # load and 10 prefetches at every position), never a frame loaded twice
    assert page.evaluate("() => window.__loadsMax") <= 5
    assert 1 <= full <= FRAMES, full
    shot(page, "long-video-dragged")

    # jumps far apart, each drawn; the cache still holds its bound
    for frame in (20, 180, 3, 120, 199, 60):
        page.eval_on_selector(
            "#scrubber",
            "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }",
            frame,
        )
        wait_frame(page, frame)
        assert _cache(page)[0] <= capacity

    # playback from frame 60 moves on at the video's rate
    page.click("#play")
    page.wait_for_timeout(1200)
    page.click("#play")
    reached = int(page.locator("#stage").get_attribute("data-frame") or 0)
    assert reached > 60 + 5, reached
    assert _cache(page)[0] <= capacity
    shot(page, "long-video-played")
