"""In real Chromium against the live server, with REAL Celery workers in separate processes.

The issue's "Must show" for the annotator's workspace: a real clip (opencv-doc's box.mp4, cut to
2 s and 320x240) ingested through the pipeline (ffprobe, ffmpeg, frames in storage), a tiny SAM 2
registered through the same code path as official weights (a checkpoint in the official format,
a promoted ModelVersion), one ``interactive`` worker and one ``propagate`` worker on Redis
sharing this test's database and media folder. As the annotator, in a phase-3 project: take the
next video, click an object and see its mask on the canvas, propagate forward and see the masks
arrive while the job runs, correct a propagated frame with a negative click, add a second object
and click it twice, undo, propagate it both ways while the propagate worker is killed (SIGKILL)
mid-run (a new worker and the recovery sweep finish it as attempt 2, every frame of the run
written exactly once), use the brush, reload and find everything, submit both objects; each
revision decodes to exactly what the page showed. A second test checks phases 1 and 2: only
their tools on the page, and the server refuses a tool the phase forbids (403).

The kill must land mid-run: the first propagate worker imports this module (``--include``) with
``E2E_PROPAGATE_FRAME_DELAY`` set, which makes it wait that long before saving each frame
(:func:`tests.e2e._workspace.install_frame_delay`; nothing happens in any other process).

Screenshots go to ``$E2E_SCREENSHOTS`` (default: a folder in the system temp dir).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DELAY_ENV = "E2E_PROPAGATE_FRAME_DELAY"
THIS_MODULE = "tests.e2e.test_annotation_real_workers"

from tests.e2e._workspace import install_frame_delay  # noqa: E402

install_frame_delay(DELAY_ENV)

# Imported after the hook: a worker importing this module only needs the lines above.
from django.utils import timezone  # noqa: E402

from engine.annotation.drafts import draft_frames  # noqa: E402
from engine.jobs.recovery import do_recover_orphaned_jobs  # noqa: E402
from engine.masklets.revisions import revision_frames  # noqa: E402
from engine.masks.rle import decode_rle  # noqa: E402
from engine.models import DraftEdit, Job, Masklet, ModelSession, Project, Video  # noqa: E402
from tests._services import celery_worker, worker_env  # noqa: E402
from tests.e2e._workspace import (  # noqa: E402
    WS,
    cut_box_clip,
    drag,
    ingest_clip,
    page_mask,
    page_masks,
    settled,
    shot,
    wait_frame,
    wait_ready,
)
from tests.e2e.conftest import log_in  # noqa: E402
from tests.engine.annotation._serving import promote_tiny_model  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

H, W, SECONDS = 240, 320, 2.0
FRAME_DELAY = 0.25  # s before each frame the first propagate worker saves


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def short_box_clip(box_clip: Path, clips_dir: Path) -> Path:
    """The first 2 s of opencv-doc's box.mp4 (real footage), at 320x240, no audio."""
    return cut_box_clip(box_clip, clips_dir, SECONDS, (W, H))


@pytest.fixture
def model_settings(settings: Any, tmp_path: Path) -> Any:
    settings.SAM2_CACHE_DIR = str(tmp_path / "model-cache")
    settings.SAM2_CHECKPOINT = ""
    settings.SAM2_DEVICE = "cpu"
    promote_tiny_model(tmp_path)
    return settings


# --- page helpers --------------------------------------------------------------------------------


def _ingest(project: Project, manager: Any, clip: Path) -> Video:
    """Upload and decode through the real pipeline (the ingest job's function, run here)."""
    video: Video = ingest_clip(project, manager, clip, SECONDS, (W, H))
    return video


def _take_next(page: Any) -> None:
    log_in(page, "alice", "alice-pass")
    page.goto("/annotate/")
    page.click("button.take-next")
    page.wait_for_url("**/annotate/*/")
    wait_ready(page)


def _go_to(page: Any, frame: int) -> None:
    page.eval_on_selector(
        "#scrubber",
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }",
        frame,
    )
    wait_frame(page, frame)


def _no_error(page: Any) -> None:
    if page.locator("#ws-message.error").count():
        raise AssertionError(page.locator("#ws-message-text").inner_text())


def _page_mask(page: Any, masklet_id: int, frame: int) -> Any:
    return page_mask(page, masklet_id, frame, (H, W))


def _page_masks(page: Any, ids: list[int], count: int) -> dict[tuple[int, int], Any]:
    masks = {}
    for i in ids:
        shown = page_masks(page, i, list(range(count)), (H, W))
        masks.update({(i, f): m for f, m in enumerate(shown)})
    return masks


def _annotated(page: Any, masklet_id: int) -> list[int]:
    return list(page.evaluate(f"async () => ({WS}).annotatedFrames({masklet_id})"))


def _painted_pixels(page: Any) -> int:
    """Pixels of the masks layer that something was drawn on."""
    return int(
        page.evaluate(
            "() => { const c = document.getElementById('layer-masks');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let k = 3; k < d.length; k += 4) if (d[k] > 0) n++; return n; }"
        )
    )


def _click(page: Any, x: float, y: float, *, negative: bool = False) -> None:
    cx, cy = page.evaluate(f"async ([x, y]) => ({WS}).imageToClient(x, y)", [x, y])
    if negative:
        page.keyboard.down("Shift")
    page.mouse.click(cx, cy)
    if negative:
        page.keyboard.up("Shift")
    settled(page)
    _no_error(page)


def _drag(page: Any, points: list[tuple[float, float]]) -> None:
    drag(page, points)
    settled(page)
    _no_error(page)


def _add_object(page: Any, video: Video, label: str) -> Masklet:
    page.fill("#new-label", label)
    page.click("#add-object-button")
    masklet = _wait_for(lambda: Masklet.objects.filter(video=video, label=label).first(), 20)
    page.wait_for_selector(f"#object-list li.object.selected[data-masklet='{masklet.pk}']")
    return masklet


def _api(page: Any, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """A call with the page's session and CSRF token: ``(status, json)``."""
    status, answer = page.evaluate(
        """async ([method, url, body]) => {
            const api = await import('/static/js/lib/api.js');
            const headers = {'Content-Type': 'application/json', 'X-CSRFToken': api.csrfToken()};
            const init = {method, headers};
            if (body !== null) init.body = JSON.stringify(body);
            const answer = await fetch(url, init);
            return [answer.status, await answer.json().catch(() => null)];
        }""",
        [method, url, body],
    )
    return int(status), answer


def _wait_for(fetch: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _tools(page: Any) -> list[tuple[str, str]]:
    tools = page.locator("button.tool")
    return [
        (tools.nth(k).get_attribute("data-tool"), tools.nth(k).get_attribute("data-sends"))
        for k in range(tools.count())
    ]


def _active_tool(page: Any) -> str | None:
    return page.locator("button.tool.active").get_attribute("data-tool")


def _timeline_marks(page: Any, masklet_id: int) -> tuple[str | None, ...]:
    """The object's timeline row: (prompted frames, edited frames, annotated frame count)."""
    row = page.locator(f"#timeline .tl-row[data-masklet='{masklet_id}']")
    return tuple(row.get_attribute(f"data-{k}") for k in ("prompted", "edited", "annotated"))


def _run_rows(masklet: Masklet, version: int) -> Counter[int]:
    rows = DraftEdit.objects.filter(masklet=masklet, version=version, revision__isnull=True)
    return Counter(rows.values_list("frame_index", flat=True))


def _pid(job: Job) -> int:
    return int(job.worker.rsplit(":", 1)[1])


def _follow_propagation(page: Any, masklet: Masklet, count: int) -> set[int]:
    """Wait until the page's propagation status closes; the frame counts seen meanwhile."""
    seen: set[int] = set()
    deadline = time.monotonic() + 90
    while page.locator("#propagate-status").is_visible():
        seen.add(len(_annotated(page, masklet.pk)))
        assert time.monotonic() < deadline, page.locator("#propagate-text").inner_text()
        page.wait_for_timeout(100)
    return seen


def _assert_revision_is_shown(masklet: Masklet, shown: dict[tuple[int, int], Any], count: int):
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    assert masklet.current_revision is not None
    frames = revision_frames(masklet.current_revision)
    for f in range(count):
        expected = shown[(masklet.pk, f)]
        fm = frames.get(f)
        got = None if fm is None or fm.rle is None else decode_rle(fm.rle)
        if expected is None:
            assert got is None or not got.any(), f
        else:
            assert got is not None, f
            assert np.array_equal(got, expected), f
    return frames


# --- tests ---------------------------------------------------------------------------------------


def test_workspace_with_real_workers_and_a_killed_propagate_worker(
    page: Any,
    project: Project,
    manager: Any,
    annotator: Any,
    short_box_clip: Path,
    redis_results: str,
    model_settings: Any,
    tmp_path: Path,
) -> None:
    settings = model_settings
    settings.ANNOTATION_PROMPT_TIMEOUT_SECONDS = 120.0  # the first click loads the model there
    env = worker_env(
        redis_results,
        tmp_path,
        MEDIA_ROOT=settings.MEDIA_ROOT,
        OMP_NUM_THREADS="1",
        SAM2_DEVICE="cpu",
    )
    video = _ingest(project, manager, short_box_clip)
    count = video.frame_count
    assert project.phase == Project.Phase.SAM2_FULL
    logs = tmp_path / "logs"
    logs.mkdir()
    with ExitStack() as workers:
        workers.enter_context(
            celery_worker(
                env, logs / "interactive.log", "interactive", extra_args=("-n", "inter@%h")
            )
        )
        first = workers.enter_context(
            celery_worker(
                {**env, DELAY_ENV: str(FRAME_DELAY)},
                logs / "propagate-1.log",
                "propagate",
                extra_args=("-n", "prop1@%h", "--include", THIS_MODULE),
            )
        )

        # the annotator takes the next video (its first frames are embedded by the worker)
        _take_next(page)
        wait_frame(page, 0)
        assert page.locator("#model-label").inner_text() == "Model: tiny-r0"
        assert page.locator("#model-banner").is_hidden()
        assert _tools(page) == [
            ("click", "video_click"),
            ("box", "video_box"),
            ("brush", "brush"),
            ("eraser", "eraser"),
        ]
        assert page.locator("button.propagate").count() == 3
        assert _active_tool(page) == "click"  # a model serves: the click, not the brush

        # an object, clicked on frame 0: the model's mask is on the canvas
        box = _add_object(page, video, "box")
        assert _painted_pixels(page) == 0
        _click(page, 150, 120)
        clicked = _page_mask(page, box.pk, 0)
        assert clicked is not None
        assert clicked.any()
        assert _painted_pixels(page) > 0
        route = ModelSession.objects.get(user=annotator, video=video)
        assert route.worker.startswith("inter@"), route.worker
        shot(page, "real-click")

        # propagate forward: the masks arrive while the job runs, then it finishes
        page.click("button.propagate[data-direction='forward']")
        page.wait_for_selector("#propagate-status", state="visible")
        seen = _follow_propagation(page, box, count)
        assert any(1 < n < count for n in seen), seen
        assert "Propagation of #0 box finished" in page.locator("#ws-message-text").inner_text()
        job = Job.objects.get(kind=Job.Kind.PROPAGATE, args__masklet_id=box.pk)
        assert (job.status, job.attempt, _pid(job)) == (Job.Status.SUCCEEDED, 1, first.pid)
        assert _annotated(page, box.pk) == list(range(count))
        shot(page, "real-propagated")

        # correct a propagated frame with a negative click: it becomes a prompted frame
        _go_to(page, 6)
        _click(page, 150, 120, negative=True)
        correction = DraftEdit.objects.get(masklet=box, tool="video_click", frame_index=6)
        assert correction.prompt is not None
        assert correction.prompt["labels"] == [0]
        shown = _page_mask(page, box.pk, 6)
        saved = None if correction.rle is None else decode_rle(correction.rle)
        assert (shown is None and saved is None) or np.array_equal(shown, saved)  # type: ignore
        row = page.locator(f"#timeline .tl-row[data-masklet='{box.pk}']")
        assert row.get_attribute("data-prompted") == "0,6"

        # a second object on frame 3: two clicks, then undo the second
        _go_to(page, 3)
        hand = _add_object(page, video, "hand")
        _click(page, 60, 60)
        one_click = _page_mask(page, hand.pk, 3)
        assert one_click is not None
        _click(page, 250, 180)
        two_clicks = _page_mask(page, hand.pk, 3)
        assert two_clicks is not None
        assert not np.array_equal(one_click, two_clicks)
        page.click("#undo")
        settled(page)
        _no_error(page)
        undone = _page_mask(page, hand.pk, 3)
        assert undone is not None
        assert np.array_equal(undone, one_click)
        assert _active_tool(page) == "click"

        # propagate it both ways; the propagate worker is killed mid-run
        page.click("button.propagate[data-direction='both']")
        page.wait_for_selector("#propagate-status", state="visible")
        run = _wait_for(
            lambda: (
                Job.objects.filter(kind=Job.Kind.PROPAGATE, args__masklet_id=hand.pk)
                .exclude(status=Job.Status.QUEUED)
                .filter(progress__gt=0)
                .first()
            ),
            60,
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=20)
        run.refresh_from_db()
        assert run.status == Job.Status.RUNNING
        assert 0 < run.progress < 1, run.progress
        assert (run.attempt, _pid(run)) == (1, first.pid)
        hand.refresh_from_db()
        version = hand.draft_version
        written = _run_rows(hand, version)
        assert 0 < len(written) < count, written
        assert set(written.values()) == {1}, written
        shot(page, "real-propagation-killed")

        # a new propagate worker; the recovery sweep finds the job's worker lost and resends it
        second = workers.enter_context(
            celery_worker(env, logs / "propagate-2.log", "propagate", extra_args=("-n", "prop2@%h"))
        )
        stale = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 60)
        Job.objects.filter(pk=run.pk).update(heartbeat_at=stale)
        assert do_recover_orphaned_jobs()["resent"] == [run.pk]
        _follow_propagation(page, hand, count)
        run.refresh_from_db()
        assert (run.status, run.attempt, _pid(run)) == (Job.Status.SUCCEEDED, 2, second.pid)
        assert "Propagation of #1 hand finished" in page.locator("#ws-message-text").inner_text()
        # every frame of the run once: one save (version), one row per frame, all in the draft
        hand.refresh_from_db()
        assert hand.draft_version == version
        assert _run_rows(hand, version) == dict.fromkeys(range(count), 1)
        marker = DraftEdit.objects.get(masklet=hand, prompt__run__job=run.pk)
        assert marker.prompt is not None
        assert marker.prompt["run"]["passes"] == [[False, count - 3], [True, 4]]
        assert sorted(draft_frames(hand)) == list(range(count))
        assert _annotated(page, hand.pk) == list(range(count))
        shot(page, "real-propagation-retried")

        # the brush on a propagated frame of the second object
        _go_to(page, 8)
        page.keyboard.press("3")
        page.eval_on_selector(
            "#brush-size", "el => { el.value = '16'; el.dispatchEvent(new Event('input')); }"
        )
        _drag(page, [(20, 210), (80, 212), (140, 210)])
        brushed = _page_mask(page, hand.pk, 8)
        assert brushed is not None
        assert brushed[210, 25:135].all()
        assert DraftEdit.objects.filter(masklet=hand, tool="brush", frame_index=8).count() == 1
        shot(page, "real-brush")

        # a reload mid-work shows everything as before
        ids = [box.pk, hand.pk]
        before = _page_masks(page, ids, count)
        timeline = {i: _timeline_marks(page, i) for i in ids}
        page.reload()
        wait_ready(page)
        after = _page_masks(page, ids, count)
        for key, mask in before.items():
            assert (mask is None) == (after[key] is None), key
            assert mask is None or np.array_equal(mask, after[key]), key
        assert {i: _timeline_marks(page, i) for i in ids} == timeline
        assert timeline[hand.pk] == ("3", "3,8", str(count))
        shot(page, "real-reloaded")

        # submit both; each revision decodes to exactly what the page showed
        shown_all = _page_masks(page, ids, count)
        for masklet in (box, hand):
            page.click(f"#object-list li[data-masklet='{masklet.pk}'] button.submit")
            page.wait_for_selector(
                f"#object-list li[data-masklet='{masklet.pk}'][data-status='submitted']"
            )
        for masklet in (box, hand):
            frames = _assert_revision_is_shown(masklet, shown_all, count)
            assert sorted(frames) == list(range(count))
        shot(page, "real-submitted")


def test_phases_one_and_two_show_their_tools_and_the_server_refuses_others(
    page: Any,
    project: Project,
    manager: Any,
    annotator: Any,
    short_box_clip: Path,
    model_settings: Any,
) -> None:
    model_settings.ANNOTATION_WARM_FRAMES = 0
    project.phase = Project.Phase.SAM_PER_FRAME
    project.save(update_fields=["phase"])
    video = _ingest(project, manager, short_box_clip)

    # phase 1: SAM per frame and the brush; no propagation on the page or the server
    _take_next(page)
    assert "Phase 1" in page.locator("#phase-label").inner_text()
    assert _tools(page) == [
        ("click", "image_click"),
        ("box", "image_box"),
        ("brush", "brush"),
        ("eraser", "eraser"),
    ]
    assert page.locator("button.propagate").count() == 0
    assert page.locator("button.tool[data-tool='click']").is_enabled()
    assert _active_tool(page) == "click"
    masklet = _add_object(page, video, "box")
    prompt = f"/api/masklets/{masklet.pk}/prompt/"
    base = masklet.draft_version
    click = {"base_version": base, "frame_index": 0, "points": [[50, 50]], "labels": [1]}
    status, body = _api(page, "POST", prompt, {**click, "tool": "video_click", "box": None})
    assert status == 403, body
    assert "does not allow video_click" in body["detail"]
    status, body = _api(
        page,
        "POST",
        f"/api/masklets/{masklet.pk}/propagate/",
        {"base_version": base, "start_frame": 0, "direction": "forward"},
    )
    assert status == 403, body
    assert "does not allow propagate" in body["detail"]
    shot(page, "phase-1")

    # phase 2: the same per-frame tools plus propagation (of masks); video clicks refused
    project.phase = Project.Phase.SAM2_MASK
    project.save(update_fields=["phase"])
    page.reload()
    wait_ready(page)
    assert "Phase 2" in page.locator("#phase-label").inner_text()
    assert _tools(page)[:2] == [("click", "image_click"), ("box", "image_box")]
    assert page.locator("button.propagate").count() == 3
    box = [10, 10, 90, 90]
    status, body = _api(page, "POST", prompt, {**click, "tool": "video_box", "box": box})
    assert status == 403, body
    assert "does not allow video_box" in body["detail"]
    # nothing was saved by the refused requests
    assert DraftEdit.objects.filter(masklet=masklet).count() == 0
    masklet.refresh_from_db()
    assert masklet.draft_version == base
    shot(page, "phase-2")
