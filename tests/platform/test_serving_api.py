"""Model-serving REST API with personas: prompt, propagate, the serving model, draft polling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.annotation import propagation
from engine.masks.rle import decode_rle
from engine.models import DraftEdit, Job, ModelVersion
from tests._clients import api_client
from tests.engine.annotation._serving import (
    clip_video,
    serving_settings,  # noqa: F401  (fixture)
    set_phase,
    tiny_model,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_model")]


@pytest.fixture
def leased(project: Any, annotator: Any) -> tuple[Any, int]:
    """A clip leased to alice through the API with one object: (client, masklet id)."""
    clip_video(project)
    client = api_client(annotator)
    taken = client.post("/api/annotation/next/", {"project": project.pk}, format="json")
    assert taken.status_code == 200
    made = client.post(f"/api/annotation/leases/{taken.json()['id']}/objects/", {"label": "a"})
    assert made.status_code == 201
    return client, made.json()["id"]


def _prompt(client: Any, masklet_id: int, body: dict[str, Any]) -> Any:
    full = {"base_version": 0, "frame_index": 0, "tool": "video_click", "box": None, **body}
    return client.post(
        f"/api/masklets/{masklet_id}/prompt/", json.dumps(full), content_type="application/json"
    )


def test_prompt_answers_the_saved_mask(leased: tuple[Any, int]) -> None:
    client, masklet_id = leased
    answer = _prompt(client, masklet_id, {"points": [[30, 30]], "labels": [1]})
    assert answer.status_code == 200, answer.json()
    data = answer.json()
    assert set(data) == {"version", "frame_index", "rle", "score", "model"}
    assert data["version"] == 1
    assert data["model"] == {"name": "tiny-r0", "demo": False}
    assert decode_rle(data["rle"]).shape == (64, 96)
    draft = client.get(f"/api/masklets/{masklet_id}/draft/").json()
    assert draft["frames"]["0"] == data["rle"]
    assert draft["prompts"][0]["points"] == [[30.0, 30.0]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"points": [[30, 30]], "labels": [1], "base_version": 5}, 409),
        ({"points": [[300, 30]], "labels": [1]}, 400),
        ({"points": [], "labels": []}, 400),
        ({"points": [[30, "x"]], "labels": [1]}, 400),
        ({"points": [[30, 30]], "labels": [1], "frame_index": 99}, 400),
        ({"points": [[30, 30]], "labels": [1], "tool": "image_click"}, 403),
        ({"points": [[30, 30]], "labels": [1], "tool": "brush"}, 400),
    ],
)
def test_prompt_errors(leased: tuple[Any, int], body: dict[str, Any], status: int) -> None:
    client, masklet_id = leased
    answer = _prompt(client, masklet_id, body)
    assert answer.status_code == status, answer.json()
    assert not DraftEdit.objects.exists()


def test_nan_in_a_json_body_is_refused(leased: tuple[Any, int]) -> None:
    client, masklet_id = leased
    body = '{"base_version": 0, "frame_index": 0, "tool": "video_click", "points": [[NaN, 1]], "labels": [1]}'  # noqa: E501
    answer = client.post(
        f"/api/masklets/{masklet_id}/prompt/", body, content_type="application/json"
    )
    assert answer.status_code == 400
    assert not DraftEdit.objects.exists()


def test_other_users_cannot_prompt(leased: tuple[Any, int], outsider: Any, reviewer: Any) -> None:
    _, masklet_id = leased
    body = {"points": [[30, 30]], "labels": [1]}
    assert _prompt(api_client(outsider), masklet_id, body).status_code == 404
    assert _prompt(api_client(reviewer), masklet_id, body).status_code in (403, 404)


def test_no_model_is_a_503_saying_how_to_get_one(leased: tuple[Any, int]) -> None:
    client, masklet_id = leased
    ModelVersion.objects.all().delete()
    answer = _prompt(client, masklet_id, {"points": [[30, 30]], "labels": [1]})
    assert answer.status_code == 503
    assert "python -m model download sam2.1_hiera_tiny" in answer.json()["detail"]
    status = client.get("/api/annotation/model/").json()
    assert status["configured"] is False
    assert status["name"] is None
    assert "SAM2_CHECKPOINT" in status["how_to"]


def test_model_status_names_the_serving_model(leased: tuple[Any, int]) -> None:
    client, _ = leased
    assert client.get("/api/annotation/model/").json() == {
        "configured": True,
        "name": "tiny-r0",
        "config": "test_tiny",
        "demo": False,
        "how_to": "",
    }


def test_propagate_queues_a_job_and_the_draft_is_polled_since_a_version(
    leased: tuple[Any, int], project: Any
) -> None:
    client, masklet_id = leased
    _prompt(client, masklet_id, {"points": [[30, 30]], "labels": [1]})
    answer = client.post(
        f"/api/masklets/{masklet_id}/propagate/",
        {"base_version": 1, "start_frame": 0, "direction": "forward"},
        format="json",
    )
    assert answer.status_code == 202, answer.json()
    job = answer.json()["job"]
    assert job == client.get(f"/api/jobs/{job['id']}/").json()
    assert job["kind"] == "propagate"
    assert job["status"] == "queued"
    propagation.run_propagation_job(job["id"])
    assert Job.objects.get(pk=job["id"]).status == Job.Status.SUCCEEDED
    polled = client.get(f"/api/masklets/{masklet_id}/draft/?since=2").json()
    assert polled["version"] == 2
    assert sorted(polled["frames"], key=int) == [str(i) for i in range(6)]
    assert polled["removed_frames"] == []
    assert client.get(f"/api/masklets/{masklet_id}/draft/?since=3").json()["frames"] == {}
    assert client.get(f"/api/masklets/{masklet_id}/draft/?since=x").status_code == 400
    # stale version, bad direction, phase 1
    stale = {"base_version": 1, "start_frame": 0, "direction": "both"}
    assert client.post(f"/api/masklets/{masklet_id}/propagate/", stale).status_code == 409
    bad = {"base_version": 2, "start_frame": 0, "direction": "up"}
    assert client.post(f"/api/masklets/{masklet_id}/propagate/", bad).status_code == 400
    set_phase(project, 1)
    ok = {"base_version": 2, "start_frame": 0, "direction": "both"}
    assert client.post(f"/api/masklets/{masklet_id}/propagate/", ok).status_code == 403


def test_the_schema_documents_the_serving_endpoints(leased: tuple[Any, int]) -> None:
    client, _ = leased
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/prompt/", "/propagate/", "/api/annotation/model/"):
        assert path in text
