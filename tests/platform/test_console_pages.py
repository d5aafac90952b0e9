"""Console pages: team, accounts, invitation links, queues and jobs, and the small defects
(empty home page explained, thumbnails, local times, manage page links, failed uploads
removable, frameless videos explained, review queue counts explained)."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from PIL import Image

from engine.models import Job, Masklet, MaskletRevision, Membership, Project, Role, User, Video
from tests._clients import web_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def site_admin(db):
    return User.objects.create_user(
        "ada", email="ada@example.org", password="ada-pass", role=Role.ADMIN
    )


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_team_page_adds_invites_changes_and_removes(project, manager, outsider):
    client = web_client(manager)
    url = f"/projects/{project.pk}/team/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"rene" in page.content
    added = client.post(url, {"identifier": "oscar", "role": "reviewer"}, follow=True)
    assert "oscar is now reviewer" in _messages(added)
    invited = client.post(url, {"identifier": "zoe@example.org", "role": "annotator"}, follow=True)
    assert re.search(r"http://testserver/invite/\w+/[\w-]+/", _messages(invited))
    unknown = client.post(url, {"identifier": "nobody", "role": "annotator"})
    assert b"email address to invite" in unknown.content
    member_url = f"/projects/{project.pk}/team/{outsider.pk}/"
    client.post(member_url, {"role": "manager"})
    assert Membership.objects.get(project=project, user=outsider).role == "manager"
    client.post(member_url, {"remove": "1"})
    assert not Membership.objects.filter(project=project, user=outsider).exists()
    last = client.post(f"/projects/{project.pk}/team/{manager.pk}/", {"remove": "1"}, follow=True)
    assert "needs a manager" in _messages(last)


def test_team_page_is_403_for_members_who_do_not_manage(project, annotator, reviewer, manager):
    for user in (annotator, reviewer):
        client = web_client(user)
        assert client.get(f"/projects/{project.pk}/team/").status_code == 403
        add = client.post(f"/projects/{project.pk}/team/", {"identifier": "x", "role": "manager"})
        assert add.status_code == 403
        remove = client.post(f"/projects/{project.pk}/team/{manager.pk}/", {"remove": "1"})
        assert remove.status_code == 403
        assert client.get("/jobs/").status_code == 403
        assert client.get("/accounts/").status_code == 403


def test_invitation_link_sets_a_password_once(project, manager):
    client = web_client(manager)
    invited = client.post(
        f"/projects/{project.pk}/team/",
        {"identifier": "zoe@example.org", "role": "annotator"},
        follow=True,
    )
    found = re.search(r"http://testserver(/invite/\S+/)", _messages(invited))
    assert found is not None
    link = found.group(1)
    stranger = Client()
    form = stranger.get(link, follow=True)
    assert b"Choose your password" in form.content
    done = stranger.post(
        form.redirect_chain[-1][0],
        {"new_password1": "zoe-new-password-1", "new_password2": "zoe-new-password-1"},
    )
    assert done.status_code == 302
    assert authenticate(username="zoe", password="zoe-new-password-1") is not None
    again = Client().get(link, follow=True)
    assert b"no longer works" in again.content


def test_user_without_project_is_told_why_and_whom_to_ask(outsider, site_admin):
    page = web_client(outsider).get("/")
    text = page.content.decode()
    assert "not a member of any project" in text
    assert "ada" in text
    assert "ada@example.org" in text


def test_site_admin_manages_accounts_in_the_app(site_admin, manager):
    client = web_client(site_admin)
    created = client.post(
        "/accounts/",
        {"username": "bob", "email": "", "role": "reviewer", "password": ""},
        follow=True,
    )
    assert "one-time link" in _messages(created)
    bob = User.objects.get(username="bob")
    assert not bob.has_usable_password()
    client.post(f"/accounts/{bob.pk}/", {"action": "deactivate"})
    bob.refresh_from_db()
    assert not bob.is_active
    client.post(f"/accounts/{bob.pk}/", {"action": "activate"})
    client.post(f"/accounts/{bob.pk}/", {"action": "reset", "password": "bob-pass-long-1"})
    assert authenticate(username="bob", password="bob-pass-long-1") is not None
    page = client.get("/accounts/")
    assert b"bob" in page.content
    refused = web_client(manager).post(f"/accounts/{bob.pk}/", {"action": "deactivate"})
    assert refused.status_code == 403
    bob.refresh_from_db()
    assert bob.is_active


def test_jobs_page_lists_failed_jobs_and_retries_them(project, manager, monkeypatch):
    monkeypatch.setattr("engine.jobs.dispatch._send_now", lambda *a: None)
    failed = Job.objects.create(
        kind=Job.Kind.EXPORT,
        project=project,
        status=Job.Status.FAILED,
        error="disk full",
        worker="w1:1",
        heartbeat_at=timezone.now(),
        finished_at=timezone.now(),
    )
    client = web_client(manager)
    page = client.get("/jobs/").content.decode()
    assert "disk full" in page
    assert "w1:1" in page
    assert f'action="/jobs/{failed.pk}/retry/"' in page
    client.post(f"/jobs/{failed.pk}/retry/")
    assert Job.objects.get(pk=failed.pk).status == Job.Status.QUEUED
    client.post(f"/jobs/{failed.pk}/cancel/")
    assert Job.objects.get(pk=failed.pk).status == Job.Status.CANCELLED


def test_timestamps_render_as_human_time_elements_not_iso(project, manager):
    page = web_client(manager).get(f"/projects/{project.pk}/team/").content.decode()
    stamps = re.findall(r'<time datetime="([^"]+)" data-local>([^<]+)</time>', page)
    assert stamps
    iso, shown = stamps[0]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d", iso)
    assert not re.search(r"\d{4}-\d\d-\d\dT", shown)
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC", shown)
    assert "js/console/local_time.js" in page


def _ready_video(project, frames: int = 3) -> Video:
    video = Video.objects.create(
        project=project, name="v.mp4", status="ready", frame_count=frames, width=640, height=480
    )
    for i in range(frames):
        buffer = io.BytesIO()
        Image.new("RGB", (640, 480), (i * 40, 80, 120)).save(buffer, "JPEG")
        buffer.seek(0)
        default_storage.save(video.frame_key(i), buffer)
    return video


def test_video_page_shows_small_cached_thumbnails(project, annotator, outsider):
    video = _ready_video(project)
    client = web_client(annotator)
    page = client.get(f"/videos/{video.pk}/").content.decode()
    assert f'src="/videos/{video.pk}/thumbs/2.jpg"' in page
    assert f'src="/media/videos/{video.pk}/frames/' not in page
    thumb = client.get(f"/videos/{video.pk}/thumbs/2.jpg")
    assert thumb["Content-Type"] == "image/jpeg"
    body = thumb.getvalue()
    with Image.open(io.BytesIO(body)) as img:
        assert img.size == (160, 120)
    assert len(body) < 8000
    assert default_storage.exists(f"videos/{video.pk}/thumbs/000002.jpg")
    assert client.get(f"/videos/{video.pk}/thumbs/3.jpg").status_code == 404
    assert web_client(outsider).get(f"/videos/{video.pk}/thumbs/0.jpg").status_code == 404


def test_frameless_video_page_explains_and_offers_the_attach_form(project, manager, annotator):
    video = Video.objects.create(
        project=project,
        name="sav_000001",
        status=Video.Status.NO_FRAMES,
        frame_count=121,
        width=848,
        height=480,
        metadata={"has_frames": False, "held_masklets": {"1": "submitted", "2": "submitted"}},
    )
    page = web_client(manager).get(f"/videos/{video.pk}/").content.decode()
    assert "has no frames yet" in page
    assert "2 imported masklets wait outside the review queue" in page
    assert 'id="attach-form"' in page
    assert "/thumbs/" not in page
    other = web_client(annotator).get(f"/videos/{video.pk}/").content.decode()
    assert 'id="attach-form"' not in other
    refused = web_client(annotator).post(f"/videos/{video.pk}/attach/")
    assert refused.status_code == 403


def test_manage_page_links_back_and_offers_data_in_and_out(project, manager):
    failed = Video.objects.create(project=project, name="bad.mp4", status="failed", error="bad")
    client = web_client(manager)
    page = client.get(f"/projects/{project.pk}/manage/").content.decode()
    for href in (
        f"/projects/{project.pk}/",
        f"/projects/{project.pk}/review-stats/",
        f"/projects/{project.pk}/annotation-stats/",
        f"/projects/{project.pk}/team/",
        "/jobs/",
    ):
        assert f'href="{href}"' in page, href
    # the import's status choice defaults to submitted for review
    status_select = page.split('id="import-status"')[1].split("</select>")[0]
    assert re.findall(r'<option value="(\w+)"', status_select)[0] == "submitted"
    assert f'action="/videos/{failed.pk}/remove/"' in page
    client.post(f"/videos/{failed.pk}/remove/")
    assert not Video.objects.filter(pk=failed.pk).exists()


def test_review_queue_says_why_own_work_is_not_counted(project, manager):
    video = Video.objects.create(project=project, name="v.mp4", status="ready", frame_count=2)
    for object_id in range(8):
        masklet = Masklet.objects.create(video=video, object_id=object_id, status="submitted")
        revision = MaskletRevision.objects.create(masklet=masklet, number=1, author=manager)
        Masklet.objects.filter(pk=masklet.pk).update(current_revision=revision)
    page = web_client(manager).get("/review/").content.decode()
    assert '<span class="queue-count">0</span>' in page
    assert '<span class="own-work">8</span> submitted masklets you worked on' in page
    assert "another reviewer or manager of the project must review them" in page


def test_review_history_shows_local_times_not_iso_strings(project, annotator, reviewer):
    from engine.review.verdicts import do_review
    from tests._masklets import ready_video, square, submitted_masklet

    video = ready_video(project, height=16, width=16, frame_count=2)
    masklet = submitted_masklet(video, annotator, {0: square(16, 16, 2, 2, 4)})
    assert masklet.current_revision is not None
    do_review(masklet.current_revision, reviewer, "satisfactory")
    page = web_client(reviewer).get(f"/review/masklets/{masklet.pk}/history/").content.decode()
    assert not re.search(r">\s*\d{4}-\d\d-\d\dT\d\d:\d\d", page)
    shown = re.findall(r"<time datetime=\"[^\"]+\" data-local>([^<]+)</time>", page)
    assert len(shown) == 2  # the verdict and the revision
    assert all(re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC", s) for s in shown)


def test_the_manage_page_moves_the_project_to_another_phase(project, manager, annotator):
    client = web_client(manager)
    page = client.get(f"/projects/{project.pk}/manage/")
    assert b'<option value="3" selected>Phase 3: full SAM 2</option>' in page.content

    moved = client.post(f"/projects/{project.pk}/phase/", {"phase": "1"}, follow=True)
    assert "is now annotated in Phase 1: SAM per frame" in _messages(moved)
    assert b'<option value="1" selected>Phase 1: SAM per frame</option>' in moved.content
    assert Project.objects.get(pk=project.pk).phase == Project.Phase.SAM_PER_FRAME

    bad = client.post(f"/projects/{project.pk}/phase/", {"phase": "9"}, follow=True)
    assert "Choose one of the phases listed" in _messages(bad)
    assert Project.objects.get(pk=project.pk).phase == Project.Phase.SAM_PER_FRAME
    refused = web_client(annotator).post(f"/projects/{project.pk}/phase/", {"phase": "3"})
    assert refused.status_code == 403
    assert Project.objects.get(pk=project.pk).phase == Project.Phase.SAM_PER_FRAME
