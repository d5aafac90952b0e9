"""In real Chromium: a manager creates a project, uploads a video and sees it become ready."""

from __future__ import annotations

import pytest

from engine.models import Project, Video
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_manager_uploads_video_and_annotator_is_kept_out(
    page,
    manager,
    annotator,
    small_clip,
    tmp_path,
    live_worker,
):
    # given a manager on the site
    log_in(page, "maria", "maria-pass")
    page.get_by_role("link", name="New project").click()
    page.fill("input[name=name]", "Street scenes")
    page.fill("input[name=annotation_fps]", "6")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/manage/")
    project = Project.objects.get(name="Street scenes")
    # when they upload a video
    page.set_input_files("#upload-file", str(small_clip))
    page.click("#upload-button")
    # then its row becomes ready with frames and a thumbnail
    row = page.locator("tr[data-status=ready]")
    row.wait_for()
    assert "pattern.mp4" in row.inner_text()
    assert "12" in row.locator("td").nth(5).inner_text()
    # (decode() waits for the thumbnail to load, and rejects if it cannot)
    width = row.locator("img.thumb").evaluate("img => img.decode().then(() => img.naturalWidth)")
    assert width > 0
    video = Video.objects.get(project=project)
    assert (video.status, video.frame_count) == (Video.Status.READY, 12)

    # and a bad file gets a clear message on the page
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"definitely not a video" * 100)
    page.set_input_files("#upload-file", str(junk))
    page.click("#upload-button")
    page.locator("#upload-status.error").wait_for()
    assert "Not a readable video file" in page.locator("#upload-status").inner_text()
    page.locator("tr[data-status=failed]").wait_for()

    # an annotator member cannot reach the manager's pages
    from engine.accounts.projects import do_set_membership

    do_set_membership(project, annotator, "annotator")
    page.context.clear_cookies()
    log_in(page, "alice", "alice-pass")
    assert "Street scenes" in page.locator("#projects").inner_text()
    assert page.get_by_role("link", name="New project").count() == 0
    response = page.goto(f"/projects/{project.pk}/manage/")
    assert response.status == 403
    response = page.goto("/projects/new/")
    assert response.status == 403
    page.goto(f"/projects/{project.pk}/")
    assert page.get_by_role("link", name="Manage and upload videos").count() == 0
