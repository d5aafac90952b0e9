"""Annotation REST API with personas: queue and leases, drafts, phases, stats, and 4xx errors."""

from __future__ import annotations

import numpy as np
import pytest

from engine.accounts.projects import do_create_user, do_set_membership
from engine.annotation import phases
from engine.masks.rle import decode_rle, encode_rle
from engine.models import Assignment, DraftEdit, InteractionEvent, MaskletRevision
from tests._clients import api_client
from tests.engine.annotation._annotation import H, W, box_mask, video

CLICK = {"points": [[5, 6]], "labels": [1]}


def _rle(mask: np.ndarray) -> dict:
    return dict(encode_rle(mask))


def _edit(frame: int, tool: str, mask: np.ndarray | None, prompt: dict | None = None) -> dict:
    return {
        "frame_index": frame,
        "tool": tool,
        "rle": None if mask is None else _rle(mask),
        "prompt": prompt,
    }


@pytest.fixture
def bob(project):
    user = do_create_user("bob", "bob-pass", "annotator")
    do_set_membership(project, user, "annotator")
    return user


@pytest.fixture
def leased(project, annotator):
    """A ready video leased to alice through the API, with one object: (lease id, masklet id)."""
    video(project)
    client = api_client(annotator)
    taken = client.post("/api/annotation/next/", {"project": project.pk}, format="json")
    assert taken.status_code == 200
    lease_id = taken.json()["id"]
    made = client.post(f"/api/annotation/leases/{lease_id}/objects/", {"label": "cup"})
    assert made.status_code == 201
    return lease_id, made.json()["id"]


def _post_edits(user, masklet_id: int, base: int, edits: list[dict]):
    return api_client(user).post(
        f"/api/masklets/{masklet_id}/draft/edits/",
        {"base_version": base, "edits": edits},
        format="json",
    )


def test_queue_personas(project, annotator, reviewer, outsider, manager, bob):
    video(project)
    alice = api_client(annotator)
    taken = alice.post("/api/annotation/next/", {"project": project.pk}, format="json")
    assert taken.status_code == 200
    lease = taken.json()
    assert lease["kind"] == "annotate"
    assert lease["tools"] == list(phases.allowed_tools(project))
    again = alice.post("/api/annotation/next/", {"project": str(project.pk)}, format="json")
    assert again.json()["id"] == lease["id"]
    # bob finds nothing; a reviewer may not take; an outsider does not see the project
    body = {"project": project.pk}
    assert api_client(bob).post("/api/annotation/next/", body, format="json").status_code == 204
    assert (
        api_client(reviewer).post("/api/annotation/next/", body, format="json").status_code == 403
    )
    assert (
        api_client(outsider).post("/api/annotation/next/", body, format="json").status_code == 404
    )
    for bad in ({"project": "١"}, {"project": " 1"}, {"project": True}, {"project": -1}, {}):
        assert alice.post("/api/annotation/next/", bad, format="json").status_code == 400


def test_leases_listing_renew_release(project, annotator, manager, bob, outsider, leased):
    lease_id, _ = leased
    url = f"/api/annotation/leases/?project={project.pk}"
    assert [row["id"] for row in api_client(manager).get(url).json()] == [lease_id]
    assert [row["user"] for row in api_client(annotator).get(url).json()] == ["alice"]
    assert api_client(bob).get(url).json() == []
    assert api_client(outsider).get(url).status_code == 404
    assert api_client(manager).get("/api/annotation/leases/?project=x").status_code == 400
    renew = f"/api/annotation/leases/{lease_id}/renew/"
    assert api_client(annotator).post(renew).status_code == 200
    assert api_client(bob).post(renew).status_code == 404
    assert api_client(manager).post(renew).status_code == 409
    release = f"/api/annotation/leases/{lease_id}/release/"
    assert api_client(bob).post(release).status_code == 404
    assert api_client(manager).post(release).json()["state"] == "cancelled"
    assert api_client(annotator).post(release).status_code == 409
    assert api_client(annotator).post(renew).status_code == 409


def test_draft_round_trip_and_submit(annotator, reviewer, outsider, leased):
    lease_id, masklet_id = leased
    a, b = box_mask(2, 3), box_mask(6, 7)
    saved = _post_edits(annotator, masklet_id, 0, [_edit(0, "video_click", a, CLICK)])
    assert saved.status_code == 200
    assert saved.json() == {"version": 1}
    propagation = [_edit(i, "propagate", b if i < 3 else None) for i in range(1, 5)]
    assert _post_edits(annotator, masklet_id, 1, propagation).json() == {"version": 2}
    stroke = {**_edit(2, "brush", None), "rle": {"size": [H, W], "counts": [0, H * W]}}
    assert _post_edits(annotator, masklet_id, 2, [stroke]).status_code == 200
    # reload returns exactly what was saved
    draft = api_client(annotator).get(f"/api/masklets/{masklet_id}/draft/").json()
    assert draft["version"] == 3
    assert sorted(draft["frames"], key=int) == ["0", "1", "2", "3", "4"]
    assert np.array_equal(decode_rle(draft["frames"]["0"]), a)
    assert np.array_equal(decode_rle(draft["frames"]["1"]), b)
    assert decode_rle(draft["frames"]["2"]).all()
    assert draft["frames"]["4"] is None
    assert draft["edited_frames"] == [0, 2]
    assert draft["prompts"][0]["points"] == [[5.0, 6.0]]
    assert draft["can_undo"] is True
    assert draft["can_redo"] is False
    # members may read a draft; outsiders never see it
    assert api_client(reviewer).get(f"/api/masklets/{masklet_id}/draft/").status_code == 200
    assert api_client(outsider).get(f"/api/masklets/{masklet_id}/draft/").status_code == 404
    # submit: the revision decodes to the draft's masks
    url = f"/api/masklets/{masklet_id}/draft/submit/"
    assert api_client(annotator).post(url, {"base_version": 2}, format="json").status_code == 409
    submitted = api_client(annotator).post(url, {"base_version": 3}, format="json")
    assert submitted.status_code == 201
    revision = MaskletRevision.objects.get(pk=submitted.json()["revision"])
    assert revision.edited_frames == [0, 2]
    assert {k: v["rle"] for k, v in revision.frames.items()} == draft["frames"]
    assert submitted.json()["status"] == "submitted"


def test_undo_redo_and_delete(annotator, bob, leased):
    _, masklet_id = leased
    client = api_client(annotator)
    _post_edits(annotator, masklet_id, 0, [_edit(0, "brush", box_mask(1, 1))])
    base = f"/api/masklets/{masklet_id}/draft/"
    assert client.post(base + "undo/", {"base_version": 1}, format="json").json() == {"version": 2}
    assert client.get(base).json()["frames"] == {}
    assert client.post(base + "undo/", {"base_version": 2}, format="json").status_code == 409
    assert client.post(base + "redo/", {"base_version": 2}, format="json").json() == {"version": 3}
    assert list(client.get(base).json()["frames"]) == ["0"]
    assert api_client(bob).delete(base + "?base_version=3").status_code == 409
    assert client.delete(base + "?base_version=2").status_code == 409
    assert client.delete(base + "?base_version=x").status_code == 400
    assert client.delete(base + "?base_version=3").status_code == 204
    assert client.get(base).status_code == 404


def test_second_annotator_and_stale_writes_change_nothing(annotator, bob, reviewer, leased):
    _, masklet_id = leased
    edit = [_edit(0, "video_click", box_mask(1, 1), CLICK)]
    assert _post_edits(bob, masklet_id, 0, edit).status_code == 409
    assert _post_edits(reviewer, masklet_id, 0, edit).status_code == 403
    assert _post_edits(annotator, masklet_id, 0, edit).status_code == 200
    before = DraftEdit.objects.count(), InteractionEvent.objects.count()
    stale = _post_edits(annotator, masklet_id, 0, edit)
    assert stale.status_code == 409
    assert "version 1" in stale.json()["detail"]
    assert (DraftEdit.objects.count(), InteractionEvent.objects.count()) == before


@pytest.mark.parametrize(
    "bad",
    [
        _edit(0, "video_click", None, {"points": [["NaN", 1]], "labels": [1]}),
        _edit(0, "video_click", None, {"points": [["1", 1]], "labels": [1]}),
        _edit(0, "video_click", None, {"points": [[W + 5, 1]], "labels": [1]}),
        _edit(0, "video_click", None, {"points": [[1, -1]], "labels": [1]}),
        _edit(0, "video_click", None, {"points": [[1, 2, 3]], "labels": [1]}),
        _edit(0, "video_click", None, {"points": [[1, 2]], "labels": [3]}),
        _edit(0, "video_box", None, {"box": [9, 9, 1, 1]}),
        _edit(99, "brush", None),
        {**_edit(0, "brush", None), "frame_index": "٣"},
        {**_edit(0, "brush", None), "rle": {"size": [H, W], "counts": "!!"}},
        {**_edit(0, "brush", None), "rle": {"size": [H, W], "counts": [1, 2]}},
        {**_edit(0, "brush", None), "rle": {"size": [H + 1, W], "counts": [(H + 1) * W]}},
        {**_edit(0, "brush", None), "rle": {"size": [H, W], "counts": "a\x00"}},
        {**_edit(0, "brush", None), "tool": "lasso"},
    ],
)
def test_bad_input_gets_400_and_writes_nothing(annotator, leased, bad):
    _, masklet_id = leased
    response = _post_edits(annotator, masklet_id, 0, [_edit(0, "brush", box_mask(1, 1)), bad])
    assert response.status_code == 400, response.json()
    assert DraftEdit.objects.count() == 0


def test_raw_nan_and_bad_bodies_are_400(annotator, leased):
    _, masklet_id = leased
    client = api_client(annotator)
    url = f"/api/masklets/{masklet_id}/draft/edits/"
    raw = (
        '{"base_version": 0, "edits": [{"frame_index": 0, "tool": "video_click", "rle": null,'
        ' "prompt": {"points": [[NaN, 1]], "labels": [1]}}]}'
    )
    assert client.post(url, raw, content_type="application/json").status_code == 400
    huge = raw.replace("NaN", "1e400")  # parses to inf
    assert client.post(url, huge, content_type="application/json").status_code == 400
    assert client.post(url, {"base_version": 0, "edits": []}, format="json").status_code == 400
    assert client.post(url, [], format="json").status_code == 400
    label_url = f"/api/annotation/leases/{leased[0]}/objects/"
    assert client.post(label_url, {"label": "a\x00b"}, format="json").status_code == 400
    assert client.post(label_url, {"label": "x" * 201}, format="json").status_code == 400
    assert DraftEdit.objects.count() == 0


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_each_phase_refuses_other_tools(project, annotator, leased, phase):
    project.phase = phase
    project.save()
    _, masklet_id = leased
    prompts: dict[str, dict] = {
        "image_click": CLICK,
        "video_click": CLICK,
        "image_box": {"box": [1, 1, 9, 9]},
        "video_box": {"box": [1, 1, 9, 9]},
    }
    version = 0
    for tool in phases.TOOLS:
        edit = _edit(0, tool, box_mask(1, 1), prompts.get(tool))
        response = _post_edits(annotator, masklet_id, version, [edit])
        if tool in phases.TOOLS_BY_PHASE[phase]:
            assert response.status_code == 200, (tool, response.json())
            version = response.json()["version"]
        else:
            assert response.status_code == 403, tool
            assert f"Phase {phase}" in response.json()["detail"]
    assert DraftEdit.objects.count() == len(phases.TOOLS_BY_PHASE[phase])


def test_finish_and_stats(project, annotator, manager, bob, outsider, leased):
    lease_id, masklet_id = leased
    _post_edits(annotator, masklet_id, 0, [_edit(0, "video_click", box_mask(1, 1), CLICK)])
    finish = f"/api/annotation/leases/{lease_id}/finish/"
    assert api_client(annotator).post(finish).status_code == 409
    submit = f"/api/masklets/{masklet_id}/draft/submit/"
    api_client(annotator).post(submit, {"base_version": 1}, format="json")
    assert api_client(annotator).post(finish).json()["state"] == Assignment.State.DONE
    url = f"/api/annotation/stats/?project={project.pk}"
    rows = api_client(manager).get(url).json()
    assert [(r["username"], r["clicks"], r["edited_frames"]) for r in rows] == [("alice", 1, 1)]
    assert rows[0]["clicks_per_clicked_frame"] == 1.0
    assert api_client(annotator).get(url).json() == rows
    assert api_client(bob).get(url).json() == []
    assert api_client(outsider).get(url).status_code == 404


def test_warm_frame_requests(annotator, manager, bob, leased):
    lease_id, masklet_id = leased
    url = f"/api/annotation/leases/{lease_id}/warm/"
    # the holder: accepted (no model is configured here, so nothing is sent)
    for body in ({"frame_index": 2}, {"frame_index": 2, "masklet_id": masklet_id}):
        answer = api_client(annotator).post(url, body, format="json")
        assert answer.status_code == 202, answer.content
        assert answer.json() == {"sent": False}
    for body in (
        {"frame_index": 10_000},
        {"frame_index": -1},
        {"frame_index": "x"},
        {},
        {"frame_index": 2, "masklet_id": masklet_id + 1000},  # not an object of this video
        {"frame_index": 2, "masklet_id": "x"},
    ):
        assert api_client(annotator).post(url, body, format="json").status_code == 400
    # another annotator does not see the lease; a manager sees it but does not hold it
    assert api_client(bob).post(url, {"frame_index": 2}, format="json").status_code == 404
    assert api_client(manager).post(url, {"frame_index": 2}, format="json").status_code == 409


def test_schema_documents_the_annotation_api(annotator):
    schema = api_client(annotator).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/annotation/next/",
        "/api/annotation/leases/",
        "/api/annotation/stats/",
        "/api/annotation/leases/{lease_id}/warm/",
        "/api/masklets/{masklet_id}/draft/",
        "/api/masklets/{masklet_id}/draft/edits/",
    ):
        assert path in paths
    assert "delete" in paths["/api/masklets/{masklet_id}/draft/"]
