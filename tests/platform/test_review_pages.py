"""Review pages: queue, player page, verdict form, fixes, history, stats; access and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.masklets.revisions import FrameMask, do_create_masklet
from engine.masks.rle import decode_rle, encode_rle
from engine.models import Assignment, Masklet, Review
from engine.review.submission import do_submit_masklet
from tests._clients import web_client
from tests._masklets import ready_video, square, submitted_masklet

H, W, N_FRAMES = 24, 32, 6


def _box(top: int, left: int, size: int = 5) -> np.ndarray:
    return square(H, W, top, left, size)


@pytest.fixture
def masklet(project, annotator):
    video = ready_video(project, height=H, width=W, frame_count=N_FRAMES, name="kitchen.mp4")
    return submitted_masklet(video, annotator, {i: _box(i, i) for i in range(N_FRAMES)})


def test_queue_page_and_take_next(masklet, reviewer, annotator):
    client = web_client(reviewer)
    page = client.get("/review/")
    assert page.status_code == 200
    assert b"kitchen.mp4" in page.content
    assert b'class="queue-count">1<' in page.content
    taken = client.post(f"/review/projects/{masklet.video.project_id}/next/")
    assert taken.status_code == 302
    assert taken["Location"] == f"/review/masklets/{masklet.pk}/"
    assert b"kitchen.mp4" not in web_client(annotator).get("/review/").content
    refused = web_client(annotator).post(f"/review/projects/{masklet.video.project_id}/next/")
    assert refused.status_code == 403


def test_review_page_embeds_player_data(masklet, reviewer):
    page = web_client(reviewer).get(f"/review/masklets/{masklet.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="frame-canvas" width="32" height="24"' in html
    start = html.index('id="review-data" type="application/json">') + len(
        'id="review-data" type="application/json">'
    )
    data = json.loads(html[start : html.index("</script>", start)])
    assert data["video"]["frame_url_prefix"] == f"/media/videos/{masklet.video_id}/frames/"
    assert np.array_equal(decode_rle(data["frames"]["4"]), _box(4, 4))
    assert "verdict-unsatisfactory" in html
    # Opening the page leases the masklet to this reviewer.
    assert Assignment.objects.get(kind="review", masklet=masklet).state == "leased"


def test_own_work_and_non_reviewers_get_403(masklet, annotator, project, reviewer, outsider):
    assert web_client(annotator).get(f"/review/masklets/{masklet.pk}/").status_code == 403
    assert web_client(outsider).get(f"/review/masklets/{masklet.pk}/").status_code == 404
    own = do_create_masklet(
        masklet.video, author=reviewer, frames={0: FrameMask(encode_rle(_box(0, 0)))}
    )
    do_submit_masklet(own, reviewer)
    assert web_client(reviewer).get(f"/review/masklets/{own.pk}/").status_code == 403
    post = web_client(reviewer).post(
        f"/review/masklets/{own.pk}/",
        {"revision": own.current_revision_id, "verdict": "satisfactory"},
    )
    assert post.status_code == 403
    assert not Review.objects.exists()


def test_verdict_form_errors(masklet, reviewer):
    client = web_client(reviewer)
    url = f"/review/masklets/{masklet.pk}/"
    rev = masklet.current_revision_id
    bad = client.post(url, {"revision": rev, "verdict": "unsatisfactory", "flagged_frames": "[99]"})
    assert bad.status_code == 400
    assert b"outside the video" in bad.content
    assert client.post(url, {"revision": rev, "verdict": "x"}).status_code == 400
    assert (
        client.post(url, {"revision": rev, "verdict": "reject", "flagged_frames": "[1"}).status_code
        == 400
    )
    assert client.post(url, {"revision": "", "verdict": "reject"}).status_code == 400
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED


def test_full_cycle_through_pages(masklet, reviewer, annotator, manager):
    rev1 = masklet.current_revision_id
    reviewer_client = web_client(reviewer)
    done = reviewer_client.post(
        f"/review/masklets/{masklet.pk}/",
        {
            "revision": rev1,
            "verdict": "unsatisfactory",
            "flagged_frames": "[1, 4]",
            "frame_notes": json.dumps({"4": "cuts off the rim"}),
            "comment": "please fix",
        },
    )
    assert done.status_code == 302
    assert done["Location"] == f"/review/masklets/{masklet.pk}/history/"
    fixes_page = web_client(annotator).get("/fixes/")
    assert b"kitchen.mp4" in fixes_page.content
    assert b"1, 4" in fixes_page.content
    fix = Assignment.objects.get(kind="fix")
    fix_page = web_client(annotator).get(f"/fixes/{fix.pk}/")
    assert fix_page.status_code == 200
    assert b"cuts off the rim" in fix_page.content
    assert b"please fix" in fix_page.content
    assert web_client(reviewer).get(f"/fixes/{fix.pk}/").status_code == 404

    corrected = encode_rle(_box(8, 8, 9))
    stale = web_client(annotator).post(
        f"/fixes/{fix.pk}/",
        {"base_revision": rev1 + 50, "frames": json.dumps({"4": corrected})},
    )
    assert stale.status_code == 409
    ok = web_client(annotator).post(
        f"/fixes/{fix.pk}/", {"base_revision": rev1, "frames": json.dumps({"4": corrected})}
    )
    assert ok.status_code == 302
    masklet.refresh_from_db()
    assert masklet.status == "submitted"
    assert masklet.current_revision.frames["4"]["rle"] == corrected

    accepted = reviewer_client.post(
        f"/review/masklets/{masklet.pk}/",
        {"revision": masklet.current_revision_id, "verdict": "satisfactory"},
    )
    assert accepted.status_code == 302
    history = web_client(annotator).get(f"/review/masklets/{masklet.pk}/history/").content.decode()
    assert history.index("Unsatisfactory") < history.index("Satisfactory")
    assert "verified" in history
    stats = web_client(manager).get(f"/projects/{masklet.video.project_id}/review-stats/")
    assert stats.status_code == 200
    assert b'id="stat-total">2<' in stats.content
    assert b'id="stat-unsatisfactory">1<' in stats.content
    assert (
        web_client(reviewer).get(f"/projects/{masklet.video.project_id}/review-stats/").status_code
        == 403
    )


def test_queue_and_review_page_name_the_object_by_the_reviewed_revisions_label(masklet, reviewer):
    revision = masklet.current_revision
    revision.label = "red <mug>"
    revision.save(update_fields=["label"])
    client = web_client(reviewer)
    queue = client.get("/review/").content.decode()
    page = client.get(f"/review/masklets/{masklet.pk}/").content.decode()
    for html in (queue, page):
        assert '<span class="object-label">red &lt;mug&gt;</span>' in html
