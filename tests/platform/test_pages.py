"""Pages: login, project lists, the manager's page, media served to members only."""

from __future__ import annotations

from django.test import Client

from engine.models import Job, Project
from engine.videos import ingest
from tests._clients import web_client


def test_login_page_and_redirect(db):
    assert Client().get("/").status_code == 302
    page = Client().get("/login/")
    assert page.status_code == 200
    assert b"Log in" in page.content


def test_manager_creates_a_project_from_the_form(manager):
    response = web_client(manager).post(
        "/projects/new/", {"name": "Birds", "annotation_fps": 6, "phase": 3, "description": ""}
    )
    project = Project.objects.get(name="Birds")
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.pk}/manage/"


def test_annotator_cannot_see_manager_pages(project, annotator):
    client = web_client(annotator)
    assert client.get("/projects/new/").status_code == 403
    assert client.get(f"/projects/{project.pk}/manage/").status_code == 403
    page = client.get(f"/projects/{project.pk}/")
    assert page.status_code == 200
    assert b"Manage and upload videos" not in page.content


def test_outsider_gets_404_for_other_projects(project, outsider):
    client = web_client(outsider)
    assert client.get(f"/projects/{project.pk}/").status_code == 404
    assert project.name.encode() not in client.get("/").content


def test_frames_are_served_to_members_only(project, annotator, outsider, small_clip):
    with small_clip.open("rb") as fh:
        video = ingest.do_upload_video(project, None, "p.mp4", fh, small_clip.stat().st_size)
    ingest.run_ingest_job(Job.objects.get(video=video).pk)
    key = video.frame_key(0)
    response = web_client(annotator).get(f"/media/{key}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"  # type: ignore[attr-defined]
    assert web_client(outsider).get(f"/media/{key}").status_code == 404
    assert web_client(annotator).get("/media/videos/1/../../secret").status_code == 404
    detail = web_client(annotator).get(f"/videos/{video.pk}/")
    assert b"12 frames" in detail.content
