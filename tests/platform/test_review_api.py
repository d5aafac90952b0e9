"""Review REST API: queue, review data, verdicts, fixes, stats, and their 4xx errors."""

from __future__ import annotations

import numpy as np
import pytest

from engine.masklets.revisions import FrameMask, do_create_masklet
from engine.masks.rle import decode_rle, encode_rle
from engine.models import Assignment, Masklet, Review, Video
from engine.review.submission import do_submit_masklet
from engine.review.verdicts import do_review
from tests._clients import api_client
from tests._masklets import ready_video, square, submitted_masklet

H, W, N_FRAMES = 24, 32, 8


def _box(top: int, left: int, size: int = 5) -> np.ndarray:
    return square(H, W, top, left, size)


@pytest.fixture
def masklet(project, annotator):
    video = ready_video(project, height=H, width=W, frame_count=N_FRAMES)
    masks: dict[int, np.ndarray | None] = {i: _box(i, i) for i in range(4)}
    masks[5] = None
    return submitted_masklet(video, annotator, masks)


def test_queue_and_review_data(masklet, reviewer, annotator, outsider):
    queue = api_client(reviewer).get("/api/review/queue/").json()["results"]
    assert [m["id"] for m in queue] == [masklet.pk]
    assert queue[0]["revision_number"] == 1
    assert api_client(annotator).get("/api/review/queue/").json()["results"] == []
    data = api_client(reviewer).get(f"/api/masklets/{masklet.pk}/review/").json()
    assert data["video"]["frame_url_prefix"] == f"/media/videos/{masklet.video_id}/frames/"
    assert data["video"]["frame_count"] == N_FRAMES
    assert sorted(data["frames"], key=int) == ["0", "1", "2", "3", "5"]
    assert data["frames"]["5"] is None
    assert np.array_equal(decode_rle(data["frames"]["2"]), _box(2, 2))
    assert data["edits"]["2"][0]["author"] == "alice"
    assert data["revision"]["author"] == "alice"
    assert api_client(outsider).get(f"/api/masklets/{masklet.pk}/review/").status_code == 404
    assert api_client(reviewer).get("/api/masklets/999999/review/").status_code == 404


def test_take_next(masklet, reviewer, annotator):
    project = masklet.video.project_id
    taken = api_client(reviewer).post(
        "/api/review/queue/next/", {"project": project}, format="json"
    )
    assert taken.status_code == 200
    assert taken.json()["id"] == masklet.pk
    assert Assignment.objects.get(kind="review").user == reviewer
    refused = api_client(annotator).post(
        "/api/review/queue/next/", {"project": project}, format="json"
    )
    assert refused.status_code == 403
    do_review(masklet.current_revision, reviewer, "satisfactory")
    empty = api_client(reviewer).post(
        "/api/review/queue/next/", {"project": project}, format="json"
    )
    assert empty.status_code == 204
    bad = api_client(reviewer).post("/api/review/queue/next/", {"project": "x"}, format="json")
    assert bad.status_code == 400


def test_verdict_errors_are_4xx_and_change_nothing(masklet, reviewer, annotator):
    url = f"/api/masklets/{masklet.pk}/reviews/"
    rev = masklet.current_revision_id
    cases = [
        ({"revision": rev, "verdict": "great"}, 400),
        ({"revision": rev, "verdict": "unsatisfactory", "flagged_frames": [N_FRAMES]}, 400),
        ({"revision": rev, "verdict": "unsatisfactory", "flagged_frames": [-3]}, 400),
        ({"revision": rev, "verdict": "unsatisfactory", "flagged_frames": [1.5]}, 400),
        ({"revision": rev, "verdict": "unsatisfactory", "flagged_frames": "NaN"}, 400),
        ({"revision": "abc", "verdict": "satisfactory"}, 400),
        ({"revision": rev + 1000, "verdict": "satisfactory"}, 404),
        ({"revision": rev, "verdict": "satisfactory", "fix_assignee": 99999}, 400),
    ]
    client = api_client(reviewer)
    for body, code in cases:
        response = client.post(url, body, format="json")
        assert response.status_code == code, (body, response.content)
        assert "detail" in response.json()
    nan = client.post(
        url,
        data=f'{{"revision": {rev}, "verdict": "unsatisfactory", "flagged_frames": [NaN]}}',
        content_type="application/json",
    )
    assert nan.status_code == 400
    own = api_client(annotator).post(
        url, {"revision": rev, "verdict": "satisfactory"}, format="json"
    )
    assert own.status_code == 403
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    assert not Review.objects.exists()


def test_self_review_is_403(project, reviewer):
    video = Video.objects.create(project=project, name="w.mp4", width=W, height=H, frame_count=2)
    own = do_create_masklet(video, author=reviewer, frames={0: FrameMask(encode_rle(_box(0, 0)))})
    do_submit_masklet(own, reviewer)
    response = api_client(reviewer).post(
        f"/api/masklets/{own.pk}/reviews/",
        {"revision": own.current_revision_id, "verdict": "satisfactory"},
        format="json",
    )
    assert response.status_code == 403
    assert "worked on" in response.json()["detail"]


def test_unsatisfactory_fix_resubmit_accept(masklet, reviewer, annotator):
    first = masklet.current_revision_id
    posted = api_client(reviewer).post(
        f"/api/masklets/{masklet.pk}/reviews/",
        {
            "revision": first,
            "verdict": "unsatisfactory",
            "flagged_frames": [1, 3],
            "frame_notes": {"3": "misses the handle"},
            "comment": "edges",
        },
        format="json",
    )
    assert posted.status_code == 201
    assert posted.json()["masklet"]["status"] == "needs_fix"
    fixes = api_client(annotator).get("/api/fixes/").json()["results"]
    assert [f["flagged_frames"] for f in fixes] == [[1, 3]]
    assert fixes[0]["frame_notes"] == {"3": "misses the handle"}
    fix_id = fixes[0]["id"]
    assert api_client(reviewer).get(f"/api/fixes/{fix_id}/").status_code == 404
    detail = api_client(annotator).get(f"/api/fixes/{fix_id}/").json()
    assert detail["review_data"]["revision"]["id"] == first

    new_mask = _box(10, 10, 7)
    flat = new_mask.flatten(order="F").astype(int)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    runs = np.diff(np.concatenate([[0], change])).tolist()
    assert sum(runs) == H * W
    url = f"/api/fixes/{fix_id}/resubmit/"
    client = api_client(annotator)
    bad_size = client.post(
        url,
        {"base_revision": first, "frames": {"3": {"size": [H + 1, W], "counts": runs}}},
        format="json",
    )
    assert bad_size.status_code == 400
    outside = client.post(
        url,
        {"base_revision": first, "frames": {str(N_FRAMES): {"size": [H, W], "counts": runs}}},
        format="json",
    )
    assert outside.status_code == 400
    stale = client.post(
        url,
        {"base_revision": first + 1000, "frames": {"3": {"size": [H, W], "counts": runs}}},
        format="json",
    )
    assert stale.status_code == 409
    ok = client.post(
        url,
        {"base_revision": first, "frames": {"3": {"size": [H, W], "counts": runs}}},
        format="json",
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["number"] == 2
    masklet.refresh_from_db()
    assert masklet.status == "submitted"
    assert np.array_equal(decode_rle(masklet.current_revision.frames["3"]["rle"]), new_mask)
    again = client.post(url, {"base_revision": ok.json()["revision"], "frames": {}}, format="json")
    assert again.status_code == 409

    stale_verdict = api_client(reviewer).post(
        f"/api/masklets/{masklet.pk}/reviews/",
        {"revision": first, "verdict": "satisfactory"},
        format="json",
    )
    assert stale_verdict.status_code == 409
    accepted = api_client(reviewer).post(
        f"/api/masklets/{masklet.pk}/reviews/",
        {"revision": ok.json()["revision"], "verdict": "satisfactory"},
        format="json",
    )
    assert accepted.status_code == 201
    history = api_client(annotator).get(f"/api/masklets/{masklet.pk}/review/").json()["reviews"]
    assert [(h["revision"], h["verdict"]) for h in history] == [
        (1, "unsatisfactory"),
        (2, "satisfactory"),
    ]


def test_submit_endpoint(project, annotator, reviewer):
    video = Video.objects.create(project=project, name="s.mp4", width=W, height=H, frame_count=2)
    draft = do_create_masklet(
        video, author=annotator, frames={0: FrameMask(encode_rle(_box(0, 0)))}
    )
    url = f"/api/masklets/{draft.pk}/submit/"
    assert draft.current_revision_id is not None
    stale = api_client(annotator).post(
        url, {"base_revision": draft.current_revision_id + 7}, format="json"
    )
    assert stale.status_code == 409
    ok = api_client(annotator).post(
        url, {"base_revision": draft.current_revision_id}, format="json"
    )
    assert ok.status_code == 200
    assert ok.json()["status"] == "submitted"
    assert api_client(annotator).post(url, {}, format="json").status_code == 409


def test_stats_for_managers_only(masklet, reviewer, manager):
    do_review(masklet.current_revision, reviewer, "reject", [2], {2: "two cups"})
    url = f"/api/projects/{masklet.video.project_id}/review-stats/"
    assert api_client(reviewer).get(url).status_code == 403
    stats = api_client(manager).get(url).json()
    assert (stats["total"], stats["rejected"], stats["reject_rate"]) == (1, 1, 1.0)
    assert stats["per_reviewer"][0]["reviewer"] == "rene"


def test_schema_lists_review_endpoints(manager):
    response = api_client(manager).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    import yaml

    body = (
        response.json()
        if response["Content-Type"].startswith("application/json")
        else yaml.safe_load(response.content)
    )
    assert "/api/masklets/{masklet_id}/reviews/" in body["paths"]
    assert "/api/fixes/{assignment_id}/resubmit/" in body["paths"]
