"""In real Chromium: review -> unsatisfactory with two flagged frames -> fix -> resubmit -> accept.

The data is built with engine functions (a real ingested clip, a masklet created from numpy masks
and submitted); every step the issue lists is then driven through the pages.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.masklets.revisions import FrameMask, do_create_masklet, revision_frames
from engine.masks.rle import decode_rle, encode_rle, normalize_rle
from engine.models import Assignment, Job, Masklet, Review
from engine.review.submission import do_submit_masklet
from engine.videos import ingest
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FLAGGED = (2, 7)
NOTE = "misses the left edge"
PAINT_ROW = 200  # image row of the brush stroke, well below every mask


def _moving_box(index: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[60:140, 40 + 10 * index : 120 + 10 * index] = True
    return mask


def _canvas_pixel(page, x: int, y: int) -> list[int]:
    return page.evaluate(
        "([x, y]) => Array.from(document.getElementById('frame-canvas')"
        ".getContext('2d').getImageData(x, y, 1, 1).data)",
        [x, y],
    )


def _mask_area(page, frame: int) -> int:
    """The player's mask area of a frame. The page's entry module (review.js or fix.js) exports
    its player; importing the module's URL again yields that same instance."""
    return page.evaluate(
        "async (i) => (await import(document.querySelector("
        "'script[type=module][src$=\"/review.js\"], script[type=module][src$=\"/fix.js\"]').src))"
        ".player.maskArea(i)",
        frame,
    )


def _wait_frame(page, frame: int) -> None:
    page.wait_for_function(f"document.getElementById('frame-canvas').dataset.frame === '{frame}'")


def test_reviewer_fix_and_accept_in_chromium(
    page, project, manager, annotator, reviewer, small_clip
):
    # given an ingested clip with real frames and a submitted masklet by the annotator
    with small_clip.open("rb") as fh:
        video = ingest.do_upload_video(
            project, manager, "pattern.mp4", fh, small_clip.stat().st_size
        )
    ingest.run_ingest_job(Job.objects.get(video=video).pk)
    video.refresh_from_db()
    assert (video.width, video.height, video.frame_count) == (320, 240, 12)
    height, width, count = 240, 320, 12
    masks = [_moving_box(i, height, width) for i in range(count)]
    masklet = do_create_masklet(
        video,
        author=annotator,
        edited_frames=[0],
        frames={
            i: FrameMask(encode_rle(m), "click" if i == 0 else "propagated")
            for i, m in enumerate(masks)
        },
    )
    do_submit_masklet(masklet, annotator)

    # the reviewer takes the next masklet from the queue
    log_in(page, "rene", "rene-pass")
    page.get_by_role("link", name="Review", exact=True).click()
    page.wait_for_url("**/review/")
    page.click("button.take-next")
    page.wait_for_url(f"**/review/masklets/{masklet.pk}/")
    _wait_frame(page, 0)
    # masks are decoded in the browser from COCO RLE: areas equal the server's masks
    for i in (0, 3, 11):
        assert _mask_area(page, i) == int(masks[i].sum())
    # the overlay tints mask pixels only
    inside, outside = (80, 100), (300, 220)
    tinted, plain_out = _canvas_pixel(page, *inside), _canvas_pixel(page, *outside)
    page.uncheck("#overlay-toggle")
    assert _canvas_pixel(page, *inside) != tinted
    assert _canvas_pixel(page, *outside) == plain_out
    page.check("#overlay-toggle")
    assert page.locator("#timeline .cell").count() == count
    assert page.locator("#timeline .cell.annotated").count() == count
    assert "alice" in page.locator("#frame-info").inner_text()

    # step frame by frame, then play to the end at 4x
    page.click("#next")
    _wait_frame(page, 1)
    assert page.locator("#frame-label").inner_text() == f"Frame 1 / {count - 1}"
    page.click("#prev")
    _wait_frame(page, 0)
    page.select_option("#speed", "4")
    page.click("#play")
    assert page.locator("#play").inner_text() == "Pause"
    _wait_frame(page, count - 1)
    page.wait_for_function("document.getElementById('play').textContent === 'Play'")

    # flag two frames, one with a note, and mark the masklet unsatisfactory
    page.click(f"#timeline .cell[data-frame='{FLAGGED[0]}']")
    _wait_frame(page, FLAGGED[0])
    page.click("#flag-toggle")
    page.fill("#flag-note", NOTE)
    page.click(f"#timeline .cell[data-frame='{FLAGGED[1]}']")
    _wait_frame(page, FLAGGED[1])
    page.click("#flag-toggle")
    assert page.locator("#timeline .cell.flagged").count() == 2
    assert NOTE in page.locator("#flagged-list").inner_text()
    page.fill("#comment", "The left edge is cut off")
    page.click("#verdict-unsatisfactory")
    page.wait_for_url(f"**/review/masklets/{masklet.pk}/history/")
    assert "Unsatisfactory" in page.locator("#verdict-history").inner_text()
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.NEEDS_FIX
    fix = Assignment.objects.get(kind=Assignment.Kind.FIX)
    assert (fix.user, fix.flagged_frames) == (annotator, list(FLAGGED))

    # the annotator sees the fix with the flagged frames marked and the note
    page.context.clear_cookies()
    log_in(page, "alice", "alice-pass")
    page.get_by_role("link", name="My fixes").click()
    row = page.locator(f"tr.fix-row[data-assignment='{fix.pk}']")
    assert row.locator("td.flagged").inner_text() == "2, 7"
    row.get_by_role("link", name="Fix").click()
    page.wait_for_url(f"**/fixes/{fix.pk}/")
    _wait_frame(page, FLAGGED[0])  # opens on the first flagged frame
    flagged_cells = page.locator("#timeline .cell.flagged")
    assert [flagged_cells.nth(k).get_attribute("data-frame") for k in range(2)] == ["2", "7"]
    assert NOTE in page.locator("#flagged-list").inner_text()
    assert NOTE in page.locator("#frame-info").inner_text()
    assert "The left edge is cut off" in page.locator("#reviewer-comment").inner_text()

    # paints a stroke with the brush on frame 2 and resubmits
    before = _mask_area(page, FLAGGED[0])
    box = page.locator("#frame-canvas").bounding_box()
    scale_x, scale_y = box["width"] / width, box["height"] / height
    page.mouse.move(box["x"] + 20 * scale_x, box["y"] + PAINT_ROW * scale_y)
    page.mouse.down()
    page.mouse.move(box["x"] + 100 * scale_x, box["y"] + PAINT_ROW * scale_y, steps=8)
    page.mouse.up()
    assert _mask_area(page, FLAGGED[0]) > before
    assert page.locator("#edited-frames").inner_text() == "2"
    page.click("#resubmit")
    page.wait_for_url("**/fixes/")
    assert "No fixes waiting" in page.locator("#fix-list").inner_text()
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    revision = masklet.current_revision
    assert revision is not None
    assert (revision.number, revision.author, revision.edited_frames) == (2, annotator, [2])
    frames = revision_frames(revision)
    painted = decode_rle(frames[2].rle)  # type: ignore[arg-type]
    assert painted[PAINT_ROW, 40:90].all()  # the stroke
    assert np.array_equal(painted[:180], masks[2][:180])  # the rest of the mask is untouched
    assert frames[2].source == "brush"
    assert np.array_equal(decode_rle(frames[3].rle), masks[3])  # type: ignore[arg-type]

    # the reviewer sees the edit and its author, then accepts
    page.context.clear_cookies()
    log_in(page, "rene", "rene-pass")
    page.goto("/review/")
    page.click("button.take-next")
    page.wait_for_url(f"**/review/masklets/{masklet.pk}/")
    page.click("#timeline .cell[data-frame='2']")
    _wait_frame(page, 2)
    assert "edited in revision 2 by alice (brush)" in page.locator("#frame-info").inner_text()
    assert "edited" in (
        page.locator("#timeline .cell[data-frame='2']").get_attribute("class") or ""
    )
    assert "Unsatisfactory" in page.locator("#verdict-history").inner_text()
    page.click("#verdict-satisfactory")
    page.wait_for_url(f"**/review/masklets/{masklet.pk}/history/")

    # the verdict history is visible: both verdicts, in order, and the masklet is verified
    rows = page.locator("#verdict-history tbody tr")
    assert rows.count() == 2
    assert "Unsatisfactory" in rows.nth(0).inner_text()
    assert "r1" in rows.nth(0).inner_text()
    assert "2, 7" in rows.nth(0).inner_text()
    assert NOTE in rows.nth(0).inner_text()
    assert "Satisfactory" in rows.nth(1).inner_text()
    assert "r2" in rows.nth(1).inner_text()
    assert page.locator("#masklet-status").inner_text() == "verified"
    assert page.locator("#revision-history tbody tr").count() == 2
    assert list(Review.objects.values_list("verdict", flat=True)) == [
        "unsatisfactory",
        "satisfactory",
    ]


def test_browser_rle_codec_matches_pycocotools(page):
    """The pages' RLE module (js/lib/rle.js) decodes COCO compressed RLE exactly and encodes masks
    as the uncompressed and compressed RLE pycocotools makes (noisy masks give many runs, large and
    negative deltas, and multi-chunk numbers). tests/frontend/ checks it under node as well."""
    page.goto("/login/")
    rng = np.random.default_rng(7)
    big = np.zeros((480, 854), dtype=bool)
    big[20:470, 5:800] = True
    big[100:300, 200:400] = False
    cases = [
        rng.random((37, 53)) < 0.5,
        rng.random((120, 90)) < 0.03,
        big,
        np.zeros((4, 6), dtype=bool),
        np.ones((5, 3), dtype=bool),
    ]
    for mask in cases:
        height, width = mask.shape
        rle = encode_rle(mask)
        decoded = page.evaluate(
            "async rle => Array.from((await import('/static/js/lib/rle.js')).rleToMask(rle))", rle
        )
        assert np.array_equal(np.array(decoded, dtype=bool).reshape(height, width), mask)
        counts, compressed = page.evaluate(
            """async ([flat, h, w]) => {
                const codec = await import('/static/js/lib/rle.js');
                const mask = Uint8Array.from(flat);
                return [codec.maskToCounts(mask, h, w), codec.maskToRle(mask, h, w)];
            }""",
            [mask.astype(int).ravel().tolist(), height, width],
        )
        assert sum(counts) == height * width
        assert normalize_rle({"size": [height, width], "counts": counts}) == rle
        assert compressed == rle
