"""Dataset API: managers start exports and imports, members download, bad files get 4xx."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from engine.datasets.export import run_export_job
from engine.datasets.importing import run_import_job
from engine.models import Job, Masklet, Video
from tests._clients import api_client

EXAMPLE = Path(__file__).parents[1] / "engine" / "data" / "sav_example"


def _upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def _import_example(client: APIClient, project) -> Job:
    for kind in ("manual", "auto"):
        content = (EXAMPLE / f"sav_000001_{kind}.json").read_bytes()
        response = client.post(
            f"/api/projects/{project.pk}/imports/",
            {"file": _upload(f"sav_000001_{kind}.json", content), "status": "verified"},
            format="multipart",
        )
        assert response.status_code == 202, response.content
        run_import_job(response.json()["id"])  # what the worker does
    return Job.objects.get(pk=response.json()["id"])


@pytest.mark.django_db(transaction=True)
def test_import_export_download_round_trip(project, manager, annotator) -> None:
    client = api_client(manager)
    job = _import_example(client, project)
    assert job.status == Job.Status.SUCCEEDED
    assert job.result["masklets"] == 9
    assert Masklet.objects.filter(video__project=project).count() == 14
    polled = client.get(f"/api/jobs/{job.pk}/").json()
    assert polled["status"] == "succeeded"
    # an annotator may not start exports
    refused = api_client(annotator).post(
        f"/api/projects/{project.pk}/exports/", {"format": "sav"}, format="json"
    )
    assert refused.status_code == 403
    started = client.post(f"/api/projects/{project.pk}/exports/", {"format": "coco"}, format="json")
    assert started.status_code == 202
    export_id = started.json()["id"]
    early = client.get(f"/api/exports/{export_id}/download/")
    assert early.status_code == 409
    run_export_job(export_id)
    assert client.get(f"/api/jobs/{export_id}/").json()["progress"] == 1.0
    # the zip is the project's whole dataset: like starting an export, managers only
    assert api_client(annotator).get(f"/api/exports/{export_id}/download/").status_code == 403
    download = client.get(f"/api/exports/{export_id}/download/")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    body = download.getvalue()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        doc = json.loads(zf.read("annotations.json"))
    assert len({a["track_id"] for a in doc["annotations"]}) == 14


@pytest.mark.django_db(transaction=True)
def test_outsiders_cannot_see_or_download_exports(project, manager, outsider) -> None:
    _import_example(api_client(manager), project)
    export_id = (
        api_client(manager)
        .post(f"/api/projects/{project.pk}/exports/", {"format": "sav"}, format="json")
        .json()["id"]
    )
    run_export_job(export_id)
    stranger = api_client(outsider)
    assert stranger.get(f"/api/exports/{export_id}/download/").status_code == 404
    assert (
        stranger.post(
            f"/api/projects/{project.pk}/exports/", {"format": "sav"}, format="json"
        ).status_code
        == 404
    )
    assert (
        stranger.post(
            f"/api/projects/{project.pk}/imports/",
            {"file": _upload("a.json", b"{}")},
            format="multipart",
        ).status_code
        == 404
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.json", b"\x89PNG not json", "is not JSON"),
        ("a.json", b'{"video_id": "v", "masklet": []}', "lacks field"),
        ("a.zip", b"PK\x03\x04 broken", "is not JSON"),
    ],
)
def test_bad_uploads_get_400_and_leave_nothing(project, manager, name, content, message) -> None:
    response = api_client(manager).post(
        f"/api/projects/{project.pk}/imports/", {"file": _upload(name, content)}, format="multipart"
    )
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Job.objects.filter(kind=Job.Kind.IMPORT).exists()


@pytest.mark.django_db
def test_mask_size_mismatch_and_unknown_project(project, manager) -> None:
    Video.objects.create(
        project=project, name="sav_000001", width=100, height=100, frame_count=121, status="ready"
    )
    client = api_client(manager)
    content = (EXAMPLE / "sav_000001_manual.json").read_bytes()
    response = client.post(
        f"/api/projects/{project.pk}/imports/",
        {"file": _upload("sav_000001_manual.json", content)},
        format="multipart",
    )
    assert response.status_code == 400
    assert "480x848 (W x H)" in response.json()["detail"]
    missing = client.post("/api/projects/999999/exports/", {"format": "sav"}, format="json")
    assert missing.status_code == 404
    bad_format = client.post(
        f"/api/projects/{project.pk}/exports/", {"format": "tiff"}, format="json"
    )
    assert bad_format.status_code == 400
    assert client.get("/api/exports/999999/download/").status_code == 404
