"""Malformed review input is a 400 that writes nothing, through the API and through the pages.

Ids and frame keys take ASCII decimal digits only: ``"²"`` and ``"٣"`` pass ``str.isdigit()``
and ``"--5"`` passes ``lstrip("-")``, and each used to reach ``int()`` (a 500, or a silent 3).
Text must not hold NUL bytes (PostgreSQL refuses them) nor exceed its limit.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from engine.masks.rle import encode_rle
from engine.models import Assignment, Masklet, MaskletRevision, Review
from engine.review.verdicts import do_review
from tests._clients import api_client, web_client
from tests._masklets import ready_video, square, submitted_masklet

H, W, N_FRAMES = 16, 20, 6
BAD_NUMBERS = ["²", "٣", "--5", "1" * 5000, " 7 ", "0x3"]
HUGE = 10**30


def _box(top: int) -> np.ndarray:
    return square(H, W, top, top, 4)


@pytest.fixture
def masklet(project, annotator):
    video = ready_video(project, height=H, width=W, frame_count=N_FRAMES)
    return submitted_masklet(video, annotator, {i: _box(i) for i in range(N_FRAMES)})


@pytest.fixture
def fix(masklet, reviewer) -> Assignment:
    outcome = do_review(masklet.current_revision, reviewer, "unsatisfactory", [1])
    assert outcome.fix_assignment is not None
    return outcome.fix_assignment


def _written(masklet: Masklet) -> tuple[Any, ...]:
    masklet.refresh_from_db()
    return (
        masklet.status,
        masklet.current_revision_id,
        Review.objects.count(),
        MaskletRevision.objects.count(),
        Assignment.objects.filter(kind="fix").count(),
        Assignment.objects.filter(kind="fix", state="done").count(),
    )


def _verdict_bodies(rev: int) -> list[dict[str, Any]]:
    ok: dict[str, Any] = {"revision": rev, "verdict": "unsatisfactory", "flagged_frames": [1]}
    bodies: list[dict[str, Any]] = []
    for bad in BAD_NUMBERS:
        bodies.append({**ok, "revision": bad})
        bodies.append({**ok, "flagged_frames": [bad]})
        bodies.append({**ok, "frame_notes": {bad: "x"}})
    bodies += [
        {**ok, "revision": HUGE},
        {**ok, "revision": -rev},
        {**ok, "flagged_frames": [HUGE]},
        {**ok, "flagged_frames": ["-1"]},
        {**ok, "flagged_frames": [True]},
        {**ok, "comment": "bad\x00byte"},
        {**ok, "frame_notes": {"1": "bad\x00byte"}},
        {**ok, "comment": "x" * 10_001},
        {**ok, "frame_notes": {"1": "x" * 2_001}},
        {**ok, "verdict": "unsatisfactory\x00"},
    ]
    return bodies


def _fix_bodies(rev: int) -> list[dict[str, Any]]:
    mask = encode_rle(_box(2))
    ok: dict[str, Any] = {"base_revision": rev, "frames": {"1": mask}}
    bodies: list[dict[str, Any]] = []
    for bad in BAD_NUMBERS:
        bodies.append({**ok, "base_revision": bad})
        bodies.append({**ok, "frames": {bad: mask}})
    bodies += [
        {**ok, "base_revision": HUGE},
        {**ok, "frames": {"1": {**mask, "counts": mask["counts"] + "\x00"}}},
        {**ok, "frames": {"1": {"size": [H, W], "counts": "²"}}},
        {**ok, "frames": {"1": {"size": [H, "²"], "counts": mask["counts"]}}},
        {**ok, "frames": {"1": mask, "01": mask}},
        {**ok, "note": "bad\x00byte"},
        {**ok, "note": "x" * 2_001},
    ]
    return bodies


def _as_form(body: dict[str, Any]) -> dict[str, Any]:
    """The page forms send JSON-valued fields as JSON text, scalars as strings."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}


@pytest.mark.parametrize("via", ["api", "page"])
@pytest.mark.parametrize("case", range(len(_verdict_bodies(1))))
def test_bad_verdict_input_is_400_and_writes_nothing(masklet, reviewer, via, case):
    body = _verdict_bodies(masklet.current_revision_id)[case]
    before = _written(masklet)
    response: Any
    if via == "api":
        response = api_client(reviewer).post(
            f"/api/masklets/{masklet.pk}/reviews/", body, format="json"
        )
        assert response.json()["code"] == "invalid", response.content
    else:
        response = web_client(reviewer).post(f"/review/masklets/{masklet.pk}/", _as_form(body))
    assert response.status_code == 400, (body, response.content[:300])
    assert _written(masklet) == before


@pytest.mark.parametrize("via", ["api", "page"])
@pytest.mark.parametrize("case", range(len(_fix_bodies(1))))
def test_bad_fix_input_is_400_and_writes_nothing(masklet, fix, annotator, via, case):
    body = _fix_bodies(masklet.current_revision_id)[case]
    before = _written(masklet)
    response: Any
    if via == "api":
        response = api_client(annotator).post(f"/api/fixes/{fix.pk}/resubmit/", body, format="json")
        assert response.json()["code"] == "invalid", response.content
    else:
        response = web_client(annotator).post(f"/fixes/{fix.pk}/", _as_form(body))
    assert response.status_code == 400, (body, response.content[:300])
    assert _written(masklet) == before


@pytest.mark.parametrize("bad", [*BAD_NUMBERS, HUGE])
def test_bad_project_ids_are_400(masklet, reviewer, bad):
    client = api_client(reviewer)
    taken = client.post("/api/review/queue/next/", {"project": bad}, format="json")
    assert taken.status_code == 400, taken.content
    assert not Assignment.objects.filter(kind="review").exists()
    listed = client.get("/api/review/queue/", {"project": str(bad)})
    assert listed.status_code == 400, listed.content


@pytest.mark.parametrize("bad", [*BAD_NUMBERS, HUGE])
def test_bad_submit_base_revision_is_400(project, annotator, bad):
    video = ready_video(project, height=H, width=W, frame_count=2)
    draft = submitted_masklet(video, annotator, {0: _box(0)})
    Masklet.objects.filter(pk=draft.pk).update(status=Masklet.Status.DRAFT)
    response = api_client(annotator).post(
        f"/api/masklets/{draft.pk}/submit/", {"base_revision": bad}, format="json"
    )
    assert response.status_code == 400, response.content
    draft.refresh_from_db()
    assert draft.status == Masklet.Status.DRAFT


def test_good_input_still_works_on_both_paths(masklet, reviewer):
    """The same shapes with plain digits pass (guards the cases above against a broken fixture)."""
    rev = masklet.current_revision_id
    body = {
        "revision": str(rev),
        "verdict": "unsatisfactory",
        "flagged_frames": ["1", 2],
        "frame_notes": {"2": "edge"},
        "comment": "ok",
    }
    response = web_client(reviewer).post(f"/review/masklets/{masklet.pk}/", _as_form(body))
    assert response.status_code == 302, response.content[:300]
    review = Review.objects.get()
    assert (review.flagged_frames, review.frame_notes) == ([1, 2], {"2": "edge"})
