"""In real Chromium with a real Celery worker: the manager's console end to end.

A manager creates a project, adds an annotator and a reviewer on the Team page, uploads a
video, imports Meta's SA-V example (manual masklets submitted for review, the default; auto
masklets as ground truth), starts automatic masklets with a tiny model, exports in each format
and downloads the zips, moves the project to phase 1 and back; the annotator and the reviewer
then see the project; a non-manager gets 403 on each of these actions, on the pages and in the
API. Screenshots of each console page go to ``$E2E_SCREENSHOTS`` (default
``/tmp/annotator-shots``), as the other browser tests' do.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine.models import Job, Masklet, Membership, ModelVersion, Project, Role, User, Video
from tests.e2e._workspace import shot
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EXAMPLE = Path(__file__).parents[1] / "engine" / "data" / "sav_example"
FORMATS = ("sav", "davis", "coco")


@pytest.fixture
def _single_thread_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker process inherits this: one torch thread (a shared 2-core machine)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def tiny_model(tmp_path: Path) -> ModelVersion:
    from engine.inference import registry
    from tests.engine.test_auto_masklets import tiny_checkpoint

    version = ModelVersion.objects.create(
        name="tiny", config="test_tiny", status=ModelVersion.Status.PROMOTED
    )
    registry.store_checkpoint_for_version(version, tiny_checkpoint(tmp_path / "tiny.pt"))
    return version


def _job_row(page: Any, kind: str, status: str = "succeeded", nth: int = 0) -> Any:
    row = page.locator(f"#job-list tr[data-kind={kind}][data-status={status}]").nth(nth)
    row.wait_for(timeout=240_000)
    return row


def _no_failed_jobs(project: Project) -> None:
    failed = Job.objects.filter(project=project, status=Job.Status.FAILED)
    assert not failed.exists(), [(j.kind, j.error) for j in failed]


def _api(page: Any, method: str, url: str, **kwargs: Any) -> int:
    """Status of an API call made with the page's session (and its CSRF token)."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    headers = {"X-CSRFToken": token, "Referer": page.url}
    response = page.request.fetch(url, method=method, headers=headers, **kwargs)
    return response.status


@pytest.mark.usefixtures("_single_thread_worker")  # before live_worker starts the process
def test_manager_console_end_to_end(
    page, manager, annotator, reviewer, small_clip, tiny_model, tmp_path, live_worker
):
    # --- a manager creates a project -------------------------------------------------------
    log_in(page, "maria", "maria-pass")
    page.get_by_role("link", name="New project").click()
    page.fill("input[name=name]", "Console demo")
    page.fill("input[name=annotation_fps]", "6")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/manage/")
    project = Project.objects.get(name="Console demo")

    # --- adds an annotator and a reviewer, and invites someone without an account ---------
    page.get_by_role("link", name="Team").click()
    for username, role in (("alice", "annotator"), ("rene", "reviewer")):
        page.fill("input[name=identifier]", username)
        page.select_option("#add-member select[name=role]", role)
        page.get_by_role("button", name="Add to the project").click()
        page.locator(f"#members tr[data-username={username}]").wait_for()
    page.fill("input[name=identifier]", "newcomer@example.org")
    page.get_by_role("button", name="Add to the project").click()
    assert "/invite/" in page.locator(".messages").inner_text()
    shot(page, "console-team")
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {
        "maria": "manager",
        "alice": "annotator",
        "rene": "reviewer",
        "newcomer": "annotator",
    }

    # --- uploads a video: the status line ends on "ready", not "decoding frames…" --------
    page.get_by_role("link", name="Data in and out").click()
    page.set_input_files("#upload-file", str(small_clip))
    page.click("#upload-button")
    page.locator("#video-list tr[data-status=ready]").wait_for(timeout=120_000)
    page.wait_for_function(
        "document.getElementById('upload-status').textContent.includes('is ready')"
    )
    assert page.locator("#upload-status").inner_text() == "pattern.mp4 is ready: 12 frames."
    clip = Video.objects.get(project=project, name="pattern.mp4")

    # --- imports the SA-V example: manual masklets for review (default), auto as truth ----
    assert page.locator("#import-status").input_value() == "submitted"
    page.set_input_files("#import-file", str(EXAMPLE / "sav_000001_manual.json"))
    page.click("#import-button")
    _job_row(page, "import")
    page.reload()  # the video list shows the new frameless video; the job table is live
    page.set_input_files("#import-file", str(EXAMPLE / "sav_000001_auto.json"))
    page.select_option("#import-status", "verified")
    page.select_option("#import-video", "sav_000001")
    page.click("#import-button")
    _job_row(page, "import", nth=1)
    _no_failed_jobs(project)
    sav = Video.objects.get(project=project, name="sav_000001")
    statuses = dict(Masklet.objects.filter(video=sav).values_list("kind", "status").distinct())
    assert statuses == {"manual": "draft", "auto": "verified"}  # manual ones held for frames
    assert sav.status == Video.Status.NO_FRAMES
    assert len(sav.metadata["held_masklets"]) == 5

    # --- automatic masklets for the chosen video, with its settings ------------------------
    from tests.engine.test_auto_masklets import SMALL_GRID

    page.check(f"#auto-form input[name=videos][value='{clip.pk}']")
    page.fill("#auto-form input[name=points_per_side]", "3")
    page.fill(
        "#auto-advanced",
        json.dumps({k: v for k, v in SMALL_GRID.items() if k != "points_per_side"}),
    )
    page.click("#auto-button")
    _job_row(page, "auto_masklets")
    _no_failed_jobs(project)
    auto_job = Job.objects.get(project=project, kind=Job.Kind.AUTO_MASKLETS)
    assert auto_job.args["config"]["points_per_side"] == 3
    assert auto_job.message == ""  # no stale progress message on a finished job
    made = Masklet.objects.filter(video=clip, kind=Masklet.Kind.AUTO)
    assert made.count() == len(auto_job.result["masklet_ids"]) >= 1
    assert set(made.values_list("status", flat=True)) == {"submitted"}

    # --- exports in each format and downloads the zips ------------------------------------
    for n, fmt in enumerate(FORMATS):
        page.select_option("#export-format", fmt)
        page.click("#export-button")
        row = _job_row(page, "export", nth=0)
        links = "document.querySelectorAll('#job-list tr[data-kind=export] a.download').length"
        page.wait_for_function(f"{links} >= {n + 1}", timeout=120_000)
        with page.expect_download() as info:
            row.locator("a.download").click()
        target = tmp_path / f"export-{fmt}.zip"
        info.value.save_as(target)
        with zipfile.ZipFile(target) as zf:
            names = zf.namelist()
        assert names, fmt
        if fmt == "sav":
            assert any(name.endswith("_auto.json") for name in names)
        if fmt == "davis":
            assert any(name.startswith("Annotations/") for name in names)
    _no_failed_jobs(project)
    shot(page, "console-manage")

    # --- moves the project to phase 1 (SAM per frame) and back to phase 3 -------------------
    for phase, label in ((1, "Phase 1: SAM per frame"), (3, "Phase 3: full SAM 2")):
        page.select_option("#phase-select", str(phase))
        page.get_by_role("button", name="Change phase").click()
        page.wait_for_url("**/manage/")
        assert f"is now annotated in {label}" in page.locator(".messages").inner_text()
        assert Project.objects.get(pk=project.pk).phase == phase
        if phase == 1:
            shot(page, "console-phase")

    # --- the frameless video says why it is out of the queues -----------------------------
    page.goto(f"/videos/{sav.pk}/")
    assert "has no frames yet" in page.locator("#no-frames").inner_text()
    shot(page, "console-video-no-frames")
    page.goto(f"/videos/{clip.pk}/")
    thumb = page.locator(".frames img").first
    width = thumb.evaluate("img => img.decode().then(() => img.naturalWidth)")
    assert width == 160
    shot(page, "console-video")

    # --- queues and jobs: a failed job shows its error and a Retry button -----------------
    failed = Job.objects.create(
        kind=Job.Kind.EXPORT,
        project=project,
        status=Job.Status.FAILED,
        error="example failure: the storage was full",
    )
    page.goto("/jobs/")
    assert page.locator("#workers code").count() >= 1  # the live worker reported heartbeats
    failed_row = page.locator(f"tr[data-job-id='{failed.pk}']")
    assert "the storage was full" in failed_row.inner_text()
    assert failed_row.locator("button.retry").count() == 1
    shot(page, "console-jobs")

    # --- a site admin's accounts page ------------------------------------------------------
    User.objects.create_user("ada", password="ada-pass", role=Role.ADMIN)
    page.context.clear_cookies()
    log_in(page, "ada", "ada-pass")
    page.goto("/accounts/")
    assert page.locator("#accounts tr[data-username=newcomer]").count() == 1
    shot(page, "console-accounts")

    # --- the annotator and the reviewer now see the project --------------------------------
    for username in ("alice", "rene"):
        page.context.clear_cookies()
        log_in(page, username, f"{username}-pass")
        assert "Console demo" in page.locator("#projects").inner_text()
    page.goto("/review/")
    count = page.locator(f".queue-project[data-project='{project.pk}'] .queue-count")
    assert int(count.inner_text()) == made.count()  # auto masklets; the SA-V ones are held
    shot(page, "console-review-queue")

    # --- a non-manager (the reviewer, then the annotator) gets 403 on each action ---------
    export_id = (
        Job.objects.filter(project=project, kind=Job.Kind.EXPORT, status=Job.Status.SUCCEEDED)
        .values_list("pk", flat=True)
        .first()
    )
    for username in ("rene", "alice"):
        page.context.clear_cookies()
        log_in(page, username, f"{username}-pass")
        for url in (f"/projects/{project.pk}/manage/", f"/projects/{project.pk}/team/", "/jobs/"):
            assert page.goto(url).status == 403, (username, url)
        base = f"/api/projects/{project.pk}"
        calls = {
            "add member": _api(
                page, "POST", f"{base}/members/", data={"user": "oscar", "role": "manager"}
            ),
            "team list": _api(page, "GET", f"{base}/members/"),
            "upload": _api(
                page,
                "POST",
                f"{base}/videos/",
                multipart={"file": {"name": "a.mp4", "mimeType": "video/mp4", "buffer": b"x"}},
            ),
            "import": _api(
                page,
                "POST",
                f"{base}/imports/",
                multipart={
                    "file": {
                        "name": "sav_000001_manual.json",
                        "mimeType": "application/json",
                        "buffer": (EXAMPLE / "sav_000001_manual.json").read_bytes(),
                    }
                },
            ),
            "auto masklets": _api(page, "POST", f"/api/videos/{clip.pk}/auto-masklets/", data={}),
            "export": _api(page, "POST", f"{base}/exports/", data={"format": "sav"}),
            "retry": _api(page, "POST", f"/api/jobs/{failed.pk}/retry/"),
            "cancel": _api(page, "POST", f"/api/jobs/{export_id}/cancel/"),
            "overview": _api(page, "GET", "/api/jobs/overview/"),
        }
        assert set(calls.values()) == {403}, (username, calls)
    assert Job.objects.get(pk=failed.pk).status == Job.Status.FAILED
    assert Job.objects.filter(project=project, kind=Job.Kind.EXPORT).count() == len(FORMATS) + 1
