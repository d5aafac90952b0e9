"""REST API: token auth, schema, scoped querysets, uploads and their errors."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from engine.models import Job, Project, Video
from tests._clients import api_client


def test_token_is_issued_for_valid_credentials(manager):
    response = APIClient().post("/api/token/", {"username": "maria", "password": "maria-pass"})
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=manager).key
    bad = APIClient().post("/api/token/", {"username": "maria", "password": "nope"})
    assert bad.status_code == 400


def test_anonymous_requests_are_refused(project):
    assert APIClient().get("/api/projects/").status_code == 401


def test_openapi_schema_lists_the_endpoints(manager):
    response = api_client(manager).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = (
        response.json()["paths"]
        if response["Content-Type"].startswith("application/json")
        else __import__("yaml").safe_load(response.content)["paths"]
    )
    assert "/api/projects/{id}/videos/" in paths
    assert "/api/jobs/{id}/cancel/" in paths


def test_querysets_are_scoped_to_membership(project, outsider, annotator, small_clip):
    from engine.videos.ingest import do_upload_video

    with small_clip.open("rb") as fh:
        video = do_upload_video(project, project.created_by, "a.mp4", fh, small_clip.stat().st_size)
    stranger = api_client(outsider)
    assert stranger.get("/api/projects/").json()["results"] == []
    assert stranger.get(f"/api/projects/{project.pk}/").status_code == 404
    assert stranger.get(f"/api/videos/{video.pk}/").status_code == 404
    assert stranger.get(f"/api/projects/{project.pk}/videos/").status_code == 404
    assert stranger.get("/api/jobs/").json()["results"] == []
    member = api_client(annotator)
    assert [p["id"] for p in member.get("/api/projects/").json()["results"]] == [project.pk]
    assert member.get(f"/api/videos/{video.pk}/").json()["name"] == "a.mp4"


def test_only_managers_create_projects(annotator, manager):
    refused = api_client(annotator).post("/api/projects/", {"name": "X"}, format="json")
    assert refused.status_code == 403
    created = api_client(manager).post(
        "/api/projects/", {"name": "X", "annotation_fps": 4}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["annotation_fps"] == 4.0
    bad = api_client(manager).post(
        "/api/projects/", {"name": "Y", "annotation_fps": 0}, format="json"
    )
    assert bad.status_code == 400
    assert "annotation fps" in str(bad.json())


def test_manager_uploads_and_a_job_is_queued(
    project,
    manager,
    small_clip,
    django_capture_on_commit_callbacks,
):
    with small_clip.open("rb") as fh, django_capture_on_commit_callbacks(execute=False) as hooks:
        response = api_client(manager).post(
            f"/api/projects/{project.pk}/videos/", {"file": fh}, format="multipart"
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "uploaded"
    assert body["width"] == 320
    assert Job.objects.get(video_id=body["id"]).status == Job.Status.QUEUED
    assert len(hooks) == 1  # the task is sent only once the upload's transaction commits


def test_annotator_cannot_upload(project, annotator, small_clip):
    with small_clip.open("rb") as fh:
        response = api_client(annotator).post(
            f"/api/projects/{project.pk}/videos/", {"file": fh}, format="multipart"
        )
    assert response.status_code == 403
    assert not Video.objects.exists()


def test_bad_file_gets_400_with_the_reason(project, manager, tmp_path):
    path = tmp_path / "x.mp4"
    path.write_bytes(b"not a video at all" * 100)
    with path.open("rb") as fh:
        response = api_client(manager).post(
            f"/api/projects/{project.pk}/videos/", {"file": fh}, format="multipart"
        )
    assert response.status_code == 400
    assert "Not a readable video file" in response.json()["detail"]
    assert response.json()["video"]["status"] == "failed"


def test_oversize_upload_gets_413(project, manager, small_clip, settings):
    settings.MAX_UPLOAD_BYTES = 2000
    with small_clip.open("rb") as fh:
        response = api_client(manager).post(
            f"/api/projects/{project.pk}/videos/", {"file": fh}, format="multipart"
        )
    assert response.status_code in (400, 413)
    assert "limit" in response.json()["detail"]


def test_file_name_with_path_parts_is_refused_not_trimmed(project, manager, small_clip):
    boundary = "XyZ"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="../../etc/evil.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        ).encode()
        + small_clip.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = api_client(manager).generic(
        "POST",
        f"/api/projects/{project.pk}/videos/",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 400
    assert "path parts" in response.json()["detail"]
    assert not Video.objects.exists()


def test_missing_file_field(project, manager):
    response = api_client(manager).post(
        f"/api/projects/{project.pk}/videos/", {}, format="multipart"
    )
    assert response.status_code == 400
    assert "'file'" in response.json()["detail"]


def test_cancel_a_queued_job(project, manager, small_clip):
    from engine.videos.ingest import do_upload_video

    with small_clip.open("rb") as fh:
        video = do_upload_video(project, manager, "a.mp4", fh, small_clip.stat().st_size)
    job = Job.objects.get(video=video)
    response = api_client(manager).post(f"/api/jobs/{job.pk}/cancel/")
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize("path", ["/api/projects/", "/api/videos/", "/api/jobs/"])
def test_session_auth_works_for_pages(path, manager):
    client = Client()
    client.force_login(manager)
    assert client.get(path).status_code == 200


def test_a_manager_moves_the_project_to_another_phase(project, manager, annotator):
    url = f"/api/projects/{project.pk}/phase/"
    moved = api_client(manager).post(url, {"phase": 1}, format="json")
    assert moved.status_code == 200
    assert moved.json()["phase"] == 1
    assert Project.objects.get(pk=project.pk).phase == Project.Phase.SAM_PER_FRAME

    unknown = api_client(manager).post(url, {"phase": 4}, format="json")
    assert unknown.status_code == 400
    assert "phase" in unknown.json()
    refused = api_client(annotator).post(url, {"phase": 3}, format="json")
    assert refused.status_code == 403
    assert Project.objects.get(pk=project.pk).phase == Project.Phase.SAM_PER_FRAME
