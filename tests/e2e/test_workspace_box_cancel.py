"""In real Chromium against the live server, with REAL Celery workers (``interactive`` and
``propagate`` on Redis) and the tiny promoted model, on a real clip (opencv-doc's box.mp4, 5 s,
320x240, 30 frames) ingested through the pipeline:

- the **box tool** in phase 3: drag a box, the worker's mask appears; the saved ``video_box``
  edit holds the box and decodes to the page's pixels;
- **renaming** the object from the object list (saved in the draft, kept in the revision), and
  refused while it propagates;
- **cancel during a real propagation**: the job ends ``cancelled``, the frames propagated
  before the cancel are kept in the draft (DESIGN 5.3: the run is one save written as it goes;
  cancellation stops it between frames), the page shows them and says so, and a new propagation
  runs to the end afterwards;
- the box tool in **phase 1** (``image_box``: SAM on one frame), then submit: each revision
  decodes to exactly what the page showed and carries the object's label.

The propagate worker imports this module (``--include``) with ``E2E_CANCEL_FRAME_DELAY`` set, so
it waits before saving each frame and the cancel lands mid-run. Screenshots: ``$E2E_SCREENSHOTS``.
"""

from __future__ import annotations

from tests.e2e._workspace import install_frame_delay

DELAY_ENV = "E2E_CANCEL_FRAME_DELAY"
THIS_MODULE = "tests.e2e.test_workspace_box_cancel"
install_frame_delay(DELAY_ENV)

# Imported after the hook: a worker importing this module only needs the lines above.
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from engine.annotation.drafts import draft_frames  # noqa: E402
from engine.masklets.revisions import revision_frames  # noqa: E402
from engine.masks.rle import decode_rle  # noqa: E402
from engine.models import DraftEdit, Job, Masklet, Project, Video  # noqa: E402
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
from tests.e2e.test_annotation_real_workers import (  # noqa: E402
    _active_tool,
    _add_object,
    _go_to,
    _no_error,
    _painted_pixels,
    _take_next,
    _tools,
    _wait_for,
    model_settings,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

H, W, SECONDS = 240, 320, 5.0
FRAME_DELAY = 0.3  # s before each frame the propagate worker saves


@pytest.fixture(scope="session")
def box_clip_5s(box_clip: Path, clips_dir: Path) -> Path:
    """The first 5 s of opencv-doc's box.mp4 (real footage), at 320x240, no audio."""
    return cut_box_clip(box_clip, clips_dir, SECONDS, (W, H))


def _ingest(project: Project, manager: Any, clip: Path) -> Video:
    video: Video = ingest_clip(project, manager, clip, SECONDS, (W, H))
    return video


def _annotated(page: Any, masklet_id: int) -> list[int]:
    return list(page.evaluate(f"async () => ({WS}).annotatedFrames({masklet_id})"))


def _message(page: Any) -> str:
    return str(page.locator("#ws-message-text").inner_text())


def _box(page: Any, corners: list[tuple[float, float]]) -> None:
    """Drag with the box tool through ``corners`` (image coordinates) and wait for the mask."""
    drag(page, corners)
    settled(page)
    _no_error(page)


def _rename(page: Any, masklet_id: int, label: str) -> None:
    page.click(f"#object-list li[data-masklet='{masklet_id}'] button.rename")
    page.fill("#object-list input.rename", label)
    page.keyboard.press("Enter")
    settled(page)


def _wait_propagation_closed(page: Any) -> None:
    deadline = time.monotonic() + 120
    while page.locator("#propagate-status").is_visible():
        assert time.monotonic() < deadline, page.locator("#propagate-text").inner_text()
        page.wait_for_timeout(100)


def _saved_mask(edit: DraftEdit) -> np.ndarray:
    assert edit.rle is not None
    return np.asarray(decode_rle(edit.rle), dtype=bool)


def test_box_tool_rename_and_cancel_with_real_workers(
    page: Any,
    project: Project,
    manager: Any,
    annotator: Any,
    box_clip_5s: Path,
    redis_results: str,
    model_settings: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = model_settings
    settings.ANNOTATION_PROMPT_TIMEOUT_SECONDS = 120.0  # the first box loads the model there
    env = worker_env(redis_results, tmp_path, MEDIA_ROOT=settings.MEDIA_ROOT, OMP_NUM_THREADS="1")
    env["SAM2_DEVICE"] = "cpu"
    video = _ingest(project, manager, box_clip_5s)
    count = video.frame_count
    logs = tmp_path / "logs"
    logs.mkdir()
    with ExitStack() as workers:
        workers.enter_context(
            celery_worker(
                env, logs / "interactive.log", "interactive", extra_args=("-n", "inter@%h")
            )
        )
        workers.enter_context(
            celery_worker(
                {**env, DELAY_ENV: str(FRAME_DELAY)},
                logs / "propagate.log",
                "propagate",
                extra_args=("-n", "prop@%h", "--include", THIS_MODULE),
            )
        )
        _take_next(page)
        wait_frame(page, 0)

        # --- the box tool in phase 3: a video_box through the interactive worker ---------
        box = _add_object(page, video, "box")
        page.keyboard.press("2")
        assert _active_tool(page) == "box"
        assert _painted_pixels(page) == 0
        _box(page, [(100, 60), (170, 120), (240, 200)])
        shown = page_mask(page, box.pk, 0, (H, W))
        assert shown is not None
        assert shown.any()
        assert _painted_pixels(page) > 0
        edit = DraftEdit.objects.get(masklet=box, tool="video_box", frame_index=0)
        assert edit.prompt is not None
        assert edit.prompt["points"] == []
        assert np.allclose(edit.prompt["box"], [100, 60, 240, 200], atol=1.0), edit.prompt
        assert np.array_equal(_saved_mask(edit), shown)
        row = page.locator(f"#timeline .tl-row[data-masklet='{box.pk}']")
        assert row.get_attribute("data-prompted") == "0"
        shot(page, "real-box")

        # --- rename it from the object list: saved in the draft ----------------------------
        before = Masklet.objects.get(pk=box.pk).draft_version
        _rename(page, box.pk, "cardboard box")
        page.wait_for_selector(
            f"#object-list li[data-masklet='{box.pk}'] .name:text-is('#0 cardboard box')"
        )
        box.refresh_from_db()
        assert (box.label, box.draft_version) == ("cardboard box", before + 1)
        assert "Renamed #0 box to #0 cardboard box" in _message(page)
        assert row.locator(".tl-label").inner_text() == "#0 cardboard box"

        # --- propagate forward, then cancel it mid-run -------------------------------------
        page.click("button.propagate[data-direction='forward']")
        page.wait_for_selector("#propagate-status", state="visible")
        run = _wait_for(
            lambda: Job.objects.filter(
                kind=Job.Kind.PROPAGATE, args__masklet_id=box.pk, status=Job.Status.RUNNING
            ).first(),
            90,
        )
        _wait_for(lambda: len(_annotated(page, box.pk)) >= 4, 90)  # frame 0 and 3 propagated
        # renaming while it propagates is refused, with the reason, and changes nothing
        _rename(page, box.pk, "crate")
        assert "Propagation is running on this object" in _message(page)
        page.click("#propagate-cancel")
        assert page.locator("#propagate-cancel").inner_text() == "Cancelling…"
        _wait_propagation_closed(page)
        run.refresh_from_db()
        assert run.status == Job.Status.CANCELLED, (run.status, run.error)
        box.refresh_from_db()
        assert box.label == "cardboard box"
        marker = DraftEdit.objects.get(masklet=box, prompt__run__job=run.pk)
        rows = DraftEdit.objects.filter(masklet=box, version=marker.version)
        kept = sorted(rows.exclude(pk=marker.pk).values_list("frame_index", flat=True))
        log = list(
            DraftEdit.objects.filter(masklet=box).values_list("version", "frame_index", "source")
        )
        assert 3 <= len(kept) < count - 1, (kept, log, box.draft_version)
        assert kept == list(range(1, len(kept) + 1))  # forward from frame 0, none skipped
        draft = draft_frames(box)
        assert sorted(draft) == [0, *kept]
        assert _annotated(page, box.pk) == [0, *kept]
        assert f"cancelled: the {len(kept)} frames it had propagated are kept" in _message(page)
        for frame, mask in zip(kept, page_masks(page, box.pk, kept, (H, W)), strict=True):
            rle = draft[frame].rle
            assert (mask is None) == (rle is None or not decode_rle(rle).any()), frame
            if rle is not None and mask is not None:
                assert np.array_equal(decode_rle(rle), mask), frame
        shot(page, "real-propagation-cancelled")

        # --- a new propagation afterwards runs to the end ----------------------------------
        page.click("button.propagate[data-direction='forward']")
        page.wait_for_selector("#propagate-status", state="visible")
        assert page.locator("#propagate-cancel").inner_text() == "Cancel"
        _wait_propagation_closed(page)
        again = Job.objects.filter(kind=Job.Kind.PROPAGATE, args__masklet_id=box.pk).latest("pk")
        assert again.pk != run.pk
        assert again.status == Job.Status.SUCCEEDED, (again.status, again.error)
        assert "Propagation of #0 cardboard box finished" in _message(page)
        assert _annotated(page, box.pk) == list(range(count))
        shot(page, "real-propagation-after-cancel")

        # --- phase 1: the box asks SAM on one frame (image_box) ----------------------------
        project.phase = Project.Phase.SAM_PER_FRAME
        project.save(update_fields=["phase"])
        page.reload()
        wait_ready(page)
        assert _tools(page)[1] == ("box", "image_box")
        lid = _add_object(page, video, "lid")
        _go_to(page, 10)
        page.keyboard.press("2")
        _box(page, [(110, 70), (180, 130), (230, 190)])
        lid_mask = page_mask(page, lid.pk, 10, (H, W))
        assert lid_mask is not None
        assert lid_mask.any()
        edit = DraftEdit.objects.get(masklet=lid, tool="image_box", frame_index=10)
        assert edit.prompt is not None
        assert np.allclose(edit.prompt["box"], [110, 70, 230, 190], atol=1.0), edit.prompt
        assert np.array_equal(_saved_mask(edit), lid_mask)
        shot(page, "real-box-phase-1")

        # --- submit both: the revisions are what the page showed, with their labels --------
        frames = list(range(count))
        shown_all = {m.pk: page_masks(page, m.pk, frames, (H, W)) for m in (box, lid)}
        for masklet in (box, lid):
            page.click(f"#object-list li[data-masklet='{masklet.pk}'] button.submit")
            page.wait_for_selector(
                f"#object-list li[data-masklet='{masklet.pk}'][data-status='submitted']"
            )
        for masklet, label in ((box, "cardboard box"), (lid, "lid")):
            masklet.refresh_from_db()
            revision = masklet.current_revision
            assert revision is not None
            assert revision.label == label
            submitted = revision_frames(revision)
            for f in frames:
                expected = shown_all[masklet.pk][f]
                fm = submitted.get(f)
                got = None if fm is None or fm.rle is None else decode_rle(fm.rle)
                if expected is None:
                    assert got is None or not got.any(), (masklet.label, f)
                else:
                    assert got is not None, (masklet.label, f)
                    assert np.array_equal(got, expected), (masklet.label, f)
        shot(page, "real-box-submitted")
