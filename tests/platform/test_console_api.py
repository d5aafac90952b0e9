"""Console API: team endpoints, project jobs, overview, retry, attach and remove; the OpenAPI
schema's binary uploads and the offline docs page. Non-managers get 403 on every action."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from engine.models import Job, Membership, Video
from tests._clients import api_client, web_client

pytestmark = pytest.mark.django_db


def test_manager_lists_adds_invites_changes_and_removes_members(project, manager, outsider):
    client = api_client(manager)
    listed = client.get(f"/api/projects/{project.pk}/members/").json()
    assert {m["username"]: m["role"] for m in listed} == {
        "maria": "manager",
        "alice": "annotator",
        "rene": "reviewer",
    }
    added = client.post(
        f"/api/projects/{project.pk}/members/", {"user": "oscar", "role": "reviewer"}, format="json"
    )
    assert added.status_code == 201
    assert "invitation" not in added.json()
    invited = client.post(
        f"/api/projects/{project.pk}/members/",
        {"user": "zoe@example.org", "role": "annotator"},
        format="json",
    )
    assert invited.status_code == 201
    assert invited.json()["invitation"].startswith("http://testserver/invite/")
    changed = client.patch(
        f"/api/projects/{project.pk}/members/{outsider.pk}/", {"role": "manager"}, format="json"
    )
    assert changed.json()["role"] == "manager"
    gone = client.delete(f"/api/projects/{project.pk}/members/{outsider.pk}/")
    assert gone.status_code == 204
    assert not Membership.objects.filter(project=project, user=outsider).exists()
    last = client.delete(f"/api/projects/{project.pk}/members/{manager.pk}/")
    assert last.status_code == 409


def test_non_managers_get_403_on_every_console_action(project, annotator, reviewer, manager):
    video = Video.objects.create(project=project, name="bad.mp4", status=Video.Status.FAILED)
    failed = Job.objects.create(kind=Job.Kind.EXPORT, project=project, status=Job.Status.FAILED)
    for user in (annotator, reviewer):
        client = api_client(user)
        base = f"/api/projects/{project.pk}"
        calls = [
            client.get(f"{base}/members/"),
            client.post(f"{base}/members/", {"user": "x@y.org", "role": "annotator"}, "json"),
            client.patch(f"{base}/members/{manager.pk}/", {"role": "annotator"}, "json"),
            client.delete(f"{base}/members/{manager.pk}/"),
            client.post(f"{base}/exports/", {"format": "sav"}, "json"),
            client.post(
                f"{base}/imports/",
                {"file": SimpleUploadedFile("a.json", b"{}")},
                format="multipart",
            ),
            client.post(f"/api/videos/{video.pk}/auto-masklets/", {}, "json"),
            client.post(f"/api/videos/{video.pk}/remove/"),
            client.post(
                f"/api/videos/{video.pk}/attach/",
                {"file": SimpleUploadedFile("a.mp4", b"x")},
                format="multipart",
            ),
            client.post(f"/api/jobs/{failed.pk}/retry/"),
            client.get("/api/jobs/overview/"),
        ]
        assert [c.status_code for c in calls] == [403] * len(calls), user.username
        # a member still sees the project's jobs
        assert client.get(f"{base}/jobs/").status_code == 200
    assert Video.objects.filter(pk=video.pk).exists()
    assert Job.objects.get(pk=failed.pk).status == Job.Status.FAILED


def test_outsiders_get_404(project, outsider):
    client = api_client(outsider)
    assert client.get(f"/api/projects/{project.pk}/members/").status_code == 404
    assert client.get(f"/api/projects/{project.pk}/jobs/").status_code == 404


def test_project_jobs_overview_and_retry(project, manager, monkeypatch):
    monkeypatch.setattr("engine.jobs.dispatch._send_now", lambda *a: None)
    failed = Job.objects.create(
        kind=Job.Kind.EXPORT, project=project, status=Job.Status.FAILED, error="disk full"
    )
    client = api_client(manager)
    jobs = client.get(f"/api/projects/{project.pk}/jobs/").json()
    assert [j["id"] for j in jobs] == [failed.pk]
    overview = client.get("/api/jobs/overview/").json()
    default = next(q for q in overview["queues"] if q["name"] == "default")
    assert [j["error"] for j in default["failed"]] == ["disk full"]
    retried = client.post(f"/api/jobs/{failed.pk}/retry/")
    assert retried.status_code == 200
    assert retried.json()["status"] == "queued"
    assert client.post(f"/api/jobs/{failed.pk}/retry/").status_code == 409


def test_failed_upload_is_removed_and_a_ready_video_is_not(project, manager):
    failed = Video.objects.create(project=project, name="bad.mp4", status=Video.Status.FAILED)
    ready = Video.objects.create(project=project, name="ok.mp4", status=Video.Status.READY)
    client = api_client(manager)
    assert client.post(f"/api/videos/{failed.pk}/remove/").status_code == 204
    assert not Video.objects.filter(pk=failed.pk).exists()
    assert client.post(f"/api/videos/{ready.pk}/remove/").status_code == 409
    assert Video.objects.filter(pk=ready.pk).exists()


def test_schema_types_multipart_files_as_binary_and_docs_page_serves_offline(manager):
    schema = api_client(manager).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    request = schema["paths"]["/api/projects/{project_id}/imports/"]["post"]["requestBody"]
    ref = request["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    file_field = schema["components"]["schemas"][ref]["properties"]["file"]
    assert file_field == {"type": "string", "format": "binary"}
    docs = web_client(manager).get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html
    assert "unpkg" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
