"""REST API of model versions and rounds: register (validated upload), promote, roll back, start
and cancel rounds, settings; non-managers get 403, outsiders 403/404; the schema lists it all."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from engine.models import Job, ModelVersion
from engine.training import versions
from tests._clients import api_client
from tests.engine.test_auto_masklets import tiny_checkpoint
from tests.engine.training._training import register_tiny

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(settings) -> None:
    settings.TASK_SENDER = "tests.platform.test_training_api.drop_send"


def drop_send(name, args, queue) -> None:  # a TASK_SENDER that sends nothing
    return None


def _upload(path: Path, name: str = "mine", config: str = "test_tiny") -> dict:
    return {
        "name": name,
        "config": config,
        "file": SimpleUploadedFile("ckpt.pt", path.read_bytes()),
    }


def test_a_manager_registers_promotes_and_rolls_back(tmp_path: Path, manager, project) -> None:
    client = api_client(manager)
    first = register_tiny(tmp_path, "first")
    versions.do_promote(None, first)
    answer = client.post("/api/models/", _upload(tiny_checkpoint(tmp_path / "b.pt", seed=3)))
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["status"], body["config"], len(body["sha256"])) == ("candidate", "test_tiny", 64)
    promoted = client.post(
        f"/api/models/{body['id']}/promote/", {"reason": "better"}, format="json"
    )
    assert promoted.status_code == 200
    assert promoted.json()["status"] == "promoted"
    listing = client.get("/api/models/").json()
    assert listing["serving"]["name"] == "mine"
    assert listing["rollback_to"] == first.pk
    back = client.post("/api/models/rollback/", {}, format="json")
    assert back.status_code == 200
    assert back.json()["id"] == first.pk
    assert ModelVersion.objects.get(name="mine").status == "retired"


def test_a_bad_checkpoint_is_refused_with_400(tmp_path: Path, manager) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    answer = api_client(manager).post("/api/models/", _upload(junk))
    assert answer.status_code == 400
    assert "not a checkpoint" in answer.json()["detail"]
    other = api_client(manager).post(
        "/api/models/", _upload(tiny_checkpoint(tmp_path / "t.pt"), config="sam2.1_hiera_t")
    )
    assert other.status_code == 400
    assert not ModelVersion.objects.exists()


def test_non_managers_get_403_on_every_change(
    tmp_path: Path, project, annotator, reviewer, outsider
) -> None:
    first = register_tiny(tmp_path, "first")
    second = register_tiny(tmp_path, "second", seed=1)
    versions.do_promote(None, first)
    versions.do_promote(None, second)
    ckpt = tiny_checkpoint(tmp_path / "c.pt", seed=2)
    for user in (annotator, reviewer, outsider):
        client = api_client(user)
        assert client.post("/api/models/", _upload(ckpt, name=f"x{user.pk}")).status_code == 403
        assert client.post(f"/api/models/{first.pk}/promote/", {}, format="json").status_code == 403
        assert client.post("/api/models/rollback/", {}, format="json").status_code == 403
        start = client.post(f"/api/projects/{project.pk}/rounds/", {}, format="json")
        assert start.status_code == (404 if user == outsider else 403)
        patch = client.patch(
            f"/api/projects/{project.pk}/round-settings/", {"enabled": True}, format="json"
        )
        assert patch.status_code == (404 if user == outsider else 403)
    assert api_client(outsider).get("/api/models/").status_code == 403
    assert api_client(annotator).get("/api/models/").status_code == 200
    assert api_client(annotator).get(f"/api/projects/{project.pk}/rounds/").status_code == 200
    assert ModelVersion.objects.get(pk=second.pk).status == "promoted"
    assert not Job.objects.filter(kind=Job.Kind.TRAIN).exists()


def test_a_manager_starts_a_round_once_and_cancels_it(manager, project) -> None:
    client = api_client(manager)
    answer = client.post(f"/api/projects/{project.pk}/rounds/", {"steps": 5}, format="json")
    assert answer.status_code == 202
    job = Job.objects.get(pk=answer.json()["id"])
    assert (job.kind, job.args["steps"], job.status) == ("train", 5, "queued")
    again = client.post(f"/api/projects/{project.pk}/rounds/", {}, format="json")
    assert again.status_code == 409
    state = client.get(f"/api/projects/{project.pk}/rounds/").json()
    assert state["active"]["job_id"] == job.pk
    cancel = client.post(f"/api/projects/{project.pk}/rounds/cancel/")
    assert cancel.status_code == 202
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert client.get(f"/api/projects/{project.pk}/rounds/").json()["active"] is None


def test_round_settings_are_validated_and_saved(manager, project) -> None:
    client = api_client(manager)
    url = f"/api/projects/{project.pk}/round-settings/"
    bad = client.patch(url, {"min_new_masklets": -1}, format="json")
    assert bad.status_code == 400
    ok = client.patch(
        url, {"enabled": True, "min_new_masklets": 3, "interval_hours": 1.5}, format="json"
    )
    assert ok.status_code == 200
    assert client.get(url).json() == {
        "enabled": True,
        "min_new_masklets": 3,
        "interval_hours": 1.5,
        "steps": 200,
    }


def test_the_schema_documents_the_endpoints(manager) -> None:
    schema = api_client(manager).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/models/",
        "/api/models/{version_id}/promote/",
        "/api/models/rollback/",
        "/api/projects/{project_id}/rounds/",
        "/api/projects/{project_id}/round-settings/",
        "/api/rounds/{round_id}/",
    ):
        assert path in paths, path
    upload = paths["/api/models/"]["post"]["requestBody"]["content"]["multipart/form-data"]
    name = upload["schema"]["$ref"].rsplit("/", 1)[-1]
    file_field = schema["components"]["schemas"][name]["properties"]["file"]
    assert (file_field["type"], file_field["format"]) == ("string", "binary")
