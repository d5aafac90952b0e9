"""In real Chromium against the live server: the annotator's workspace.

An annotator takes the next video of a real ingested clip, adds an object, paints it with the
brush, erases part of it, undoes and redoes, reloads the page and finds the same mask, submits,
and the revision in the database decodes to exactly the pixels the page painted.

Clicks and propagation go through the model-serving endpoints with the tiny promoted model
served in this process; the click contract itself is also checked with the endpoints stubbed by
``page.route``. ``test_annotation_real_workers.py`` drives the same page with real workers.

Screenshots go to ``$E2E_SCREENSHOTS`` (default: a folder in the system temp dir, since
``tests/e2e/screenshots/`` is not ignored by git).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from engine.masklets.revisions import revision_frames
from engine.masks.rle import decode_rle, encode_rle
from engine.models import Assignment, DraftEdit, Job, Masklet
from engine.videos import ingest
from tests.e2e._workspace import WS, drag, page_mask, settled, shot, wait_frame, wait_ready
from tests.e2e.conftest import log_in
from tests.engine.annotation._serving import (
    serving_settings,  # noqa: F401  (fixture)
    tiny_model,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

H, W, COUNT = 240, 320, 12


def _ingest(project, manager, clip):
    with clip.open("rb") as fh:
        video = ingest.do_upload_video(project, manager, "pattern.mp4", fh, clip.stat().st_size)
    ingest.run_ingest_job(Job.objects.get(video=video).pk)
    video.refresh_from_db()
    assert (video.width, video.height, video.frame_count) == (W, H, COUNT)
    return video


def _wait_until(page, condition: str, timeout_s: float = 20.0) -> None:
    """Poll an async JS expression (wait_for_function takes a returned promise as truthy)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"async () => Boolean({condition})"):
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        page.wait_for_timeout(50)


def _page_mask(page, masklet_id: int, frame: int) -> np.ndarray | None:
    return page_mask(page, masklet_id, frame, (H, W))


def _mask(page, masklet_id: int, frame: int) -> np.ndarray:
    """The page's mask of a frame that must have one."""
    mask = _page_mask(page, masklet_id, frame)
    assert mask is not None, f"no mask on frame {frame}"
    return mask


def _set_brush(page, size: int) -> None:
    page.eval_on_selector(
        "#brush-size",
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }",
        size,
    )
    assert page.locator("#brush-size-value").inner_text() == str(size)


def test_brush_undo_redo_reload_submit_in_chromium(page, project, manager, annotator, small_clip):
    # given a real clip ingested through the pipeline, in a phase-3 project
    video = _ingest(project, manager, small_clip)

    # the annotator takes the next video from the queue
    log_in(page, "alice", "alice-pass")
    page.get_by_role("link", name="Annotate", exact=True).click()
    page.wait_for_url("**/annotate/")
    assert "1</span> video ready" in page.content()
    page.click("button.take-next")
    lease = Assignment.objects.get(kind="annotate", user=annotator)
    page.wait_for_url(f"**/annotate/{lease.pk}/")
    assert lease.video == video
    wait_ready(page)
    wait_frame(page, 0)
    # the phase's tools only; the model label never leaves the annotator guessing
    tools = page.locator("button.tool")
    assert [tools.nth(k).get_attribute("data-tool") for k in range(tools.count())] == [
        "click",
        "box",
        "brush",
        "eraser",
    ]
    label = page.locator("#model-label").inner_text()
    # no model is configured in this test: the page says so and offers what works without one
    assert label == "No model"
    banner = page.locator("#model-banner").inner_text()
    assert "python -m model download sam2.1_hiera_tiny" in banner
    assert page.locator("button.tool[data-tool='click']").is_disabled()
    # the frame is drawn on the frame layer (not blank)
    pixel = page.evaluate(
        "() => { const c = document.getElementById('layer-frame'); const r = c.width / 2;"
        " return Array.from(c.getContext('2d').getImageData(r, c.height / 2, 1, 1).data); }"
    )
    assert pixel[3] == 255

    # add an object
    page.fill("#new-label", "cup")
    page.click("#add-object-button")
    page.wait_for_selector("#object-list li.object.selected")
    masklet = Masklet.objects.get(video=video)
    assert (masklet.label, masklet.status) == ("cup", "draft")
    assert "#0 cup" in page.locator("#object-list").inner_text()

    # brush a stroke on frame 0 (key 3 selects the brush)
    page.keyboard.press("3")
    assert "active" in (page.locator("button.tool[data-tool='brush']").get_attribute("class") or "")
    _set_brush(page, 20)
    drag(page, [(40, 100), (120, 100), (200, 110)])
    settled(page)
    painted = _page_mask(page, masklet.pk, 0)
    assert painted is not None
    assert painted[100, 45:195].all()
    assert not painted[:80].any()
    assert page.locator("#save-state").inner_text() == "Saved"
    assert DraftEdit.objects.filter(masklet=masklet, tool="brush").count() == 1

    # erase across it with a smaller eraser ([ shrinks the brush)
    page.keyboard.press("4")
    _set_brush(page, 12)
    page.keyboard.press("[")
    assert int(page.locator("#brush-size-value").inner_text()) < 12
    drag(page, [(120, 80), (120, 125)])
    settled(page)
    erased = _page_mask(page, masklet.pk, 0)
    assert erased is not None
    assert not erased[100, 118:122].any()
    assert erased[100, 60]

    # undo (button) restores the stroke; redo (Ctrl+Shift+Z) erases again
    page.click("#undo")
    _wait_until(page, f"({WS}).maskOf({masklet.pk}, 0)[100 * {W} + 120] === 1")
    assert np.array_equal(_mask(page, masklet.pk, 0), painted)
    page.keyboard.press("Control+Shift+Z")
    _wait_until(page, f"({WS}).maskOf({masklet.pk}, 0)[100 * {W} + 120] === 0")
    assert np.array_equal(_mask(page, masklet.pk, 0), erased)
    # the timeline marks frame 0 as edited and present
    row = page.locator(f"#timeline .tl-row[data-masklet='{masklet.pk}']")
    assert row.get_attribute("data-edited") == "0"
    assert row.get_attribute("data-present") == "1"

    # step to frame 3 with the keyboard, zoom with the wheel, paint there too
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    wait_frame(page, 3)
    assert page.locator("#frame-label").inner_text() == f"Frame 3 / {COUNT - 1}"
    box = page.locator("#layer-cursor").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    assert page.locator("#zoom-label").inner_text() != "100%"
    page.keyboard.press("3")
    _set_brush(page, 16)
    drag(page, [(150, 120), (170, 130)])
    settled(page)
    frame3 = _page_mask(page, masklet.pk, 3)
    assert frame3 is not None
    assert frame3[125, 160]
    # the help overlay opens with ? and closes with Escape
    page.keyboard.press("Shift+?")
    assert page.locator("#help-overlay").is_visible()
    assert "Undo" in page.locator("#help-table").inner_text()
    shot(page, "workspace-help")
    page.keyboard.press("Escape")
    assert not page.locator("#help-overlay").is_visible()
    page.click("#zoom-fit")
    shot(page, "workspace-brush")

    # a reload shows the same state
    page.reload()
    wait_ready(page)
    assert np.array_equal(_mask(page, masklet.pk, 0), erased)
    assert np.array_equal(_mask(page, masklet.pk, 3), frame3)
    assert _page_mask(page, masklet.pk, 1) is None
    # undo after the reload falls back to the selected object's server-side history
    assert page.locator("#undo").is_enabled()

    # a second tab saving first: this tab's next save is refused (409), reloaded, and said
    other = page.context.new_page()
    other.goto(f"/annotate/{lease.pk}/")
    wait_ready(other)
    other.keyboard.press("3")
    drag(other, [(20, 200), (60, 200)])
    settled(other)
    other.close()
    page.keyboard.press("3")
    drag(page, [(250, 30), (280, 30)])
    settled(page)
    page.wait_for_selector("#ws-message.error")
    assert "reloaded" in page.locator("#ws-message-text").inner_text()
    after = _page_mask(page, masklet.pk, 0)
    assert after is not None
    assert after[200, 40]  # the other tab's stroke
    assert not after[30, 265]  # this tab's refused stroke is gone
    shot(page, "workspace-conflict")

    # submit the object; finish the video
    shown = {f: _page_mask(page, masklet.pk, f) for f in range(COUNT)}
    page.click(f"#object-list li[data-masklet='{masklet.pk}'] button.submit")
    page.wait_for_selector(f"#object-list li[data-masklet='{masklet.pk}'][data-status='submitted']")
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    revision = masklet.current_revision
    assert revision is not None
    assert revision.author == annotator
    assert revision.edited_frames == [0, 3]
    frames = revision_frames(revision)
    assert sorted(frames) == [0, 3]
    for f in range(COUNT):
        if f in frames:
            assert np.array_equal(decode_rle(frames[f].rle), shown[f]), f  # type: ignore[arg-type]
        else:
            assert shown[f] is None
    shot(page, "workspace-submitted")
    page.click("#finish-video")
    page.wait_for_url("**/annotate/")
    lease.refresh_from_db()
    assert lease.state == Assignment.State.DONE
    assert "No videos ready to annotate in Kitchen clips" in page.content()
    shot(page, "queue-empty")


def test_click_contract_with_stubbed_model(page, project, manager, annotator, small_clip):
    """The page's side of the click contract, with the serving endpoints stubbed."""
    video = _ingest(project, manager, small_clip)
    sent: list[dict] = []

    def model(route) -> None:
        body = {"configured": True, "name": "stub-model", "config": "test", "demo": False}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def prompt(route) -> None:
        body = json.loads(route.request.post_data or "{}")
        sent.append(body)
        x, y = body["points"][-1]
        mask = np.zeros((H, W), dtype=bool)
        mask[int(y) - 10 : int(y) + 10, int(x) - 10 : int(x) + 10] = True
        answer = {
            "version": body["base_version"],  # nothing is saved server side in this test
            "frame_index": body["frame_index"],
            "rle": dict(encode_rle(mask)),
            "score": 0.9,
            "model": {"name": "stub-model", "demo": False},
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    page.route("**/api/annotation/model/", model)
    page.route("**/api/masklets/*/prompt/", prompt)
    log_in(page, "alice", "alice-pass")
    page.goto("/annotate/")
    page.click("button.take-next")
    page.wait_for_url("**/annotate/*/")
    wait_ready(page)
    assert page.locator("#model-label").inner_text() == "Model: stub-model"
    assert page.locator("#model-banner").is_hidden()
    page.fill("#new-label", "ball")
    page.click("#add-object-button")
    page.wait_for_selector("#object-list li.object.selected")
    masklet = Masklet.objects.get(video=video)
    page.keyboard.press("1")
    # a positive click, then a negative one (shift): each request carries the full click list
    x, y = page.evaluate(f"async () => ({WS}).imageToClient(100, 60)")
    page.mouse.click(x, y)
    settled(page)
    x2, y2 = page.evaluate(f"async () => ({WS}).imageToClient(130, 70)")
    page.keyboard.down("Shift")
    page.mouse.click(x2, y2)
    page.keyboard.up("Shift")
    settled(page)
    assert [b["labels"] for b in sent] == [[1], [1, 0]]
    assert sent[1]["points"] == [[100, 60], [130, 70]]
    assert {b["tool"] for b in sent} == {"video_click"}  # phase 3
    assert sent[0]["frame_index"] == 0
    assert sent[0]["box"] is None
    shown = _page_mask(page, masklet.pk, 0)
    assert shown is not None
    assert shown[70, 130]
    # a click outside the frame is refused in the page, with a message, and nothing is sent
    page.evaluate(
        f"async () => {{ const ws = {WS}; ws.stage.view.fit(320, 240, 2000, 2000); ws.draw(); }}"
    )
    box = page.locator("#layer-cursor").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 3, box["y"] + 3)
    assert "inside the frame" in page.locator("#ws-message-text").inner_text()
    assert len(sent) == 2
    shot(page, "workspace-stub-click")


def test_clicks_and_propagation_through_the_model(
    page, project, manager, annotator, small_clip, request
):
    """A click served by the tiny promoted model (in this process, the serving tests' caller),
    then a propagation job, run here as the propagate worker would, followed by the page."""
    from engine.annotation import propagation

    request.getfixturevalue("tiny_model")
    video = _ingest(project, manager, small_clip)
    log_in(page, "alice", "alice-pass")
    page.goto("/annotate/")
    page.click("button.take-next")
    page.wait_for_url("**/annotate/*/")
    wait_ready(page)
    assert page.locator("#model-label").inner_text() == "Model: tiny-r0"
    assert page.locator("#model-banner").is_hidden()
    page.fill("#new-label", "object")
    page.click("#add-object-button")
    page.wait_for_selector("#object-list li.object.selected")
    masklet = Masklet.objects.get(video=video)
    # a positive click on frame 0, then a negative one: the model's masks are saved and shown
    page.keyboard.press("1")
    for (x, y), shift in (((160, 120), False), ((60, 40), True)):
        cx, cy = page.evaluate(f"async ([x, y]) => ({WS}).imageToClient(x, y)", [x, y])
        if shift:
            page.keyboard.down("Shift")
        page.mouse.click(cx, cy)
        if shift:
            page.keyboard.up("Shift")
        settled(page)
    assert page.locator("#ws-message.error").count() == 0, page.locator("#ws-message").inner_text()
    clicked = _page_mask(page, masklet.pk, 0)
    draft_frames = page.evaluate(
        f"async () => (await (await fetch('/api/masklets/{masklet.pk}/draft/')).json()).frames"
    )
    assert (clicked is None) == (draft_frames["0"] is None)
    prompts = DraftEdit.objects.filter(masklet=masklet, tool="video_click").order_by("seq")
    assert [e.prompt["labels"] for e in prompts] == [[1], [1, 0]]  # type: ignore[index]
    shot(page, "workspace-model-click")

    # propagate forward: the page follows the job and shows the frames as they are written
    page.click("button.propagate[data-direction='forward']")
    page.wait_for_selector("#propagate-status", state="visible")
    job = Job.objects.get(kind="propagate")
    propagation.run_propagation_job(job.pk)
    page.wait_for_selector("#propagate-status", state="hidden", timeout=60_000)
    assert "Propagation of #0 object finished" in page.locator("#ws-message-text").inner_text()
    row = page.locator(f"#timeline .tl-row[data-masklet='{masklet.pk}']")
    assert row.get_attribute("data-annotated") == str(COUNT)
    assert page.evaluate(f"async () => ({WS}).annotatedFrames({masklet.pk})") == list(range(COUNT))
    shot(page, "workspace-model-propagated")
    # undo the propagation (one step), then redo it
    page.click("#undo")
    _wait_until(page, f"({WS}).annotatedFrames({masklet.pk}).length === 1")
    page.keyboard.press("Control+Shift+Z")
    _wait_until(page, f"({WS}).annotatedFrames({masklet.pk}).length === {COUNT}")
    shown = {f: _page_mask(page, masklet.pk, f) for f in range(COUNT)}
    page.click(f"#object-list li[data-masklet='{masklet.pk}'] button.submit")
    page.wait_for_selector(f"#object-list li[data-masklet='{masklet.pk}'][data-status='submitted']")
    masklet.refresh_from_db()
    assert masklet.current_revision is not None
    frames = revision_frames(masklet.current_revision)
    assert sorted(frames) == list(range(COUNT))
    for f, fm in frames.items():
        got = None if fm.rle is None else decode_rle(fm.rle)
        expected = shown[f]
        if expected is None:
            assert got is None or not got.any(), f
        else:
            assert got is not None
            assert np.array_equal(got, expected), f
