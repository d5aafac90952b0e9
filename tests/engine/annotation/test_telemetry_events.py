"""Frame views from the workspace (``POST /api/annotation/events/``): only the lease holder,
validated, at most 200 per request, dated by their age; objects and submitted masklets counted
from the draft events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.accounts.projects import do_create_user, do_set_membership
from engine.annotation import drafts, leases, telemetry
from engine.annotation.telemetry import FrameView
from engine.errors import InvalidInput, NotFound
from engine.models import Assignment, InteractionEvent
from tests._clients import api_client
from tests.engine.annotation._annotation import (
    N_FRAMES,
    box_mask,
    click,
    sent_back_for_fix,
    stroke,
    video,
)

URL = "/api/annotation/events/"
L = "the lease"  # replaced by the lease's id in the bad-input bodies
NOW = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def bob(project):
    user = do_create_user("bob", "bob-pass", "annotator")
    do_set_membership(project, user, "annotator")
    return user


@pytest.fixture
def lease(project, annotator) -> Assignment:
    video(project)
    taken = leases.do_take_next_video(annotator, project)
    assert taken is not None
    return taken


def _views(lease_id: int, *frames_and_ages: tuple[int, int]) -> list[FrameView]:
    return [FrameView(lease_id, f, age) for f, age in frames_and_ages]


def test_frame_views_are_dated_by_age_and_feed_active_time(project, annotator, lease):
    # the page showed frames 0, 1, 2 at 9 s, 5 s and 0 s before its request
    made = telemetry.do_record_frame_views(
        annotator, _views(lease.pk, (0, 9000), (1, 5000), (2, 0)), now=NOW
    )
    assert [e.created_at for e in made] == [
        NOW - timedelta(seconds=9),
        NOW - timedelta(seconds=5),
        NOW,
    ]
    rows = list(
        InteractionEvent.objects.order_by("created_at").values_list(
            "kind", "frame_index", "created_at", "payload", "assignment_id", "user_id"
        )
    )
    assert [r[:3] for r in rows] == [
        ("frame_view", 0, NOW - timedelta(seconds=9)),
        ("frame_view", 1, NOW - timedelta(seconds=5)),
        ("frame_view", 2, NOW),
    ]
    assert all(r[3] == {"phase": 3} and r[4:] == (lease.pk, annotator.pk) for r in rows)
    # gaps 4 s + 5 s = 9 s over 10 frames; nothing edited, nothing clicked
    (row,) = telemetry.annotation_stats(telemetry.project_events(project, annotator))
    assert row.active_seconds == pytest.approx(9.0)
    assert row.active_seconds_per_frame == pytest.approx(0.9)
    assert (row.edited_frames, row.clicks, row.objects, row.submitted) == (0, 0, 0, 0)


def test_only_the_holder_records_and_nothing_on_bad_input(
    project, annotator, manager, bob, outsider, reviewer, lease
):
    one = _views(lease.pk, (0, 0))
    # a manager sees the lease but does not hold it; others do not see it at all
    with pytest.raises(leases.NotLeaseHolder):
        telemetry.do_record_frame_views(manager, one)
    for user in (bob, outsider, reviewer):
        with pytest.raises(NotFound):
            telemetry.do_record_frame_views(user, one)
    with pytest.raises(NotFound):
        telemetry.do_record_frame_views(annotator, _views(lease.pk + 99, (0, 0)))
    # a frame outside the video or a bad age anywhere in the batch: nothing recorded
    for bad in ((N_FRAMES, 0), (0, -1), (0, 5 * 60 * 1000 + 1)):
        with pytest.raises(InvalidInput):
            telemetry.do_record_frame_views(annotator, _views(lease.pk, (1, 0), bad))
    with pytest.raises(InvalidInput):
        telemetry.do_record_frame_views(annotator, _views(lease.pk, *[(0, 0)] * 201))
    assert not InteractionEvent.objects.filter(kind="frame_view").exists()
    # once released, the former holder records nothing either
    leases.do_release_lease(annotator, lease)
    with pytest.raises(leases.NotLeaseHolder):
        telemetry.do_record_frame_views(annotator, one)
    assert not InteractionEvent.objects.filter(kind="frame_view").exists()


def test_fix_lease_views_name_the_masklet(project, annotator):
    v = video(project)
    masklet = sent_back_for_fix(v, annotator, {0: box_mask(1, 1)})
    fix = leases.do_take_next_video(annotator, project)
    assert fix is not None
    assert fix.kind == Assignment.Kind.FIX
    (event,) = telemetry.do_record_frame_views(annotator, _views(fix.pk, (0, 0)))
    assert (event.masklet_id, event.assignment_id) == (masklet.pk, fix.pk)


def test_objects_and_submitted_masklets(project, annotator, lease):
    cup = drafts.do_create_object(annotator, lease, "cup")
    lid = drafts.do_create_object(annotator, lease, "lid")
    gone = drafts.do_create_object(annotator, lease, "oops")
    drafts.do_delete_object(annotator, gone, 0)  # its events stay, without the masklet
    version = drafts.do_record_edits(annotator, cup, 0, [click(1, box_mask(1, 1))])
    drafts.do_submit_draft(annotator, cup, version)
    drafts.do_record_edits(annotator, lid, 0, [stroke(4, box_mask(2, 2))])
    (row,) = telemetry.annotation_stats(telemetry.project_events(project, annotator))
    # cup and lid were worked on (the deleted object is not counted); only cup was submitted
    assert (row.objects, row.submitted) == (2, 1)
    # frames 1 (click) and 4 (brush) edited; one click on one frame
    assert (row.edited_frames, row.clicks, row.clicked_frames) == (2, 1, 1)


# --- the endpoint ------------------------------------------------------------------------------


def _event(lease_id, frame, **extra) -> dict:
    return {"lease": lease_id, "kind": "frame_view", "frame_index": frame, **extra}


def test_endpoint_records_a_batch(project, annotator, lease):
    body = {"events": [_event(lease.pk, 3, age_ms=2000), _event(lease.pk, 4)]}
    answer = api_client(annotator).post(URL, body, format="json")
    assert (answer.status_code, answer.json()) == (201, {"recorded": 2})
    three, four = InteractionEvent.objects.filter(kind="frame_view").order_by("frame_index")
    assert (three.frame_index, four.frame_index) == (3, 4)
    gap = (four.created_at - three.created_at).total_seconds()
    assert gap == pytest.approx(2.0, abs=0.5)
    rows = api_client(annotator).get(f"/api/annotation/stats/?project={project.pk}").json()
    assert [(r["events"], r["edited_frames"]) for r in rows] == [(2, 0)]
    assert rows[0]["objects"] == 0
    assert rows[0]["last_event_at"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"events": []},
        {"events": "frame 3"},
        [_event(L, 3)],
        {"events": [_event(L, 3, kind="click")]},
        {"events": [{"lease": L, "kind": "frame_view"}]},
        {"events": [_event(L, -1)]},
        {"events": [_event(L, True)]},
        {"events": [_event(L, 2.5)]},
        {"events": [_event(True, 2)]},
        {"events": [_event(L, 2, age_ms=-5)]},
        {"events": [_event(L, 2, age_ms="5")]},
        {"events": [_event(L, 2, age_ms=1.5)]},
        {"events": [_event(L, 2, age_ms=10**9)]},
        {"events": [_event(L, 2)] * 201},
        {"events": [_event(L, N_FRAMES)]},
    ],
)
def test_endpoint_bad_input_is_400_and_records_nothing(annotator, lease, body):
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        events = body["events"]
        body = {"events": [{**e, "lease": lease.pk} if e["lease"] is L else e for e in events]}
    answer = api_client(annotator).post(URL, body, format="json")
    assert answer.status_code == 400, answer.content
    assert not InteractionEvent.objects.filter(kind="frame_view").exists()


def test_endpoint_personas(annotator, manager, bob, outsider, reviewer, lease):
    body = {"events": [_event(lease.pk, 0)]}
    assert api_client(manager).post(URL, body, format="json").status_code == 409
    for user in (bob, outsider, reviewer):
        assert api_client(user).post(URL, body, format="json").status_code == 404
    assert api_client(annotator).post(URL, body, format="json").status_code == 201
    assert api_client(annotator).post(
        URL, {"events": [_event(lease.pk, 0)] * 200}, format="json"
    ).json() == {"recorded": 200}
    assert InteractionEvent.objects.filter(kind="frame_view").count() == 201
    anonymous = api_client(annotator)
    anonymous.credentials()
    assert anonymous.post(URL, body, format="json").status_code in (401, 403)


def test_schema_documents_the_events_endpoint(annotator):
    paths = api_client(annotator).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "post" in paths["paths"]["/api/annotation/events/"]
