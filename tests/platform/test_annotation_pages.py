"""Annotator pages with personas: the queue (next video, leases, managers' release, empty
states), the workspace (page data, someone else's lease, tools per phase)."""

from __future__ import annotations

import json

import pytest

from engine.accounts.projects import do_create_user, do_set_membership
from engine.annotation import drafts, leases
from engine.models import Assignment, Project
from tests._clients import web_client
from tests.engine.annotation._annotation import H, W, box_mask, sent_back_for_fix, video
from tests.engine.annotation._serving import SENT, serving_settings, tiny_model  # noqa: F401


def _payload(html: str) -> dict:
    marker = 'id="annotate-data" type="application/json">'
    start = html.index(marker) + len(marker)
    return json.loads(html[start : html.index("</script>", start)])


@pytest.fixture
def bob(project):
    user = do_create_user("bob", "bob-pass", "annotator")
    do_set_membership(project, user, "annotator")
    return user


def test_queue_empty_states_per_persona(project, annotator, reviewer, outsider):
    # given a project with no ready video
    # then the annotator sees the project with a clear empty state and a disabled button
    page = web_client(annotator).get("/annotate/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "No videos ready to annotate in Kitchen clips" in html
    assert 'class="take-next" disabled' in html
    # a reviewer and an outsider annotate in no project
    for user in (reviewer, outsider):
        html = web_client(user).get("/annotate/").content.decode()
        assert "You annotate in no project" in html
        assert "Kitchen clips" not in html
    assert web_client(annotator).get("/").content.decode().count('href="/annotate/"') == 1


def test_next_video_redirects_to_the_workspace_and_lists_the_lease(project, annotator, bob):
    # given one ready video
    v = video(project, "kitchen.mp4")
    client = web_client(annotator)
    assert "1</span> video ready to annotate" in client.get("/annotate/").content.decode()
    # when alice takes the next video
    taken = client.post(f"/annotate/projects/{project.pk}/next/")
    # then she lands in the workspace of her lease, and the queue lists it
    lease = Assignment.objects.get(kind="annotate", user=annotator)
    assert (taken.status_code, taken["Location"]) == (302, f"/annotate/{lease.pk}/")
    assert lease.video == v
    html = client.get("/annotate/").content.decode()
    assert f'data-lease="{lease.pk}"' in html
    assert "Continue my video" in html
    assert "Who holds what" not in html  # not a manager
    # bob finds nothing and is told so
    empty = web_client(bob).post(f"/annotate/projects/{project.pk}/next/", follow=True)
    assert "No videos ready to annotate in Kitchen clips right now." in empty.content.decode()
    # GET is not a way to take work
    assert client.get(f"/annotate/projects/{project.pk}/next/").status_code == 405


def test_managers_see_who_holds_what_and_release(project, annotator, manager, bob):
    video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    html = web_client(manager).get("/annotate/").content.decode()
    assert "Who holds what" in html
    assert f'<tr class="lease-row" data-lease="{lease.pk}">' in html
    assert "<td>alice</td>" in html
    # bob (not a manager) may not release alice's lease: it is not even visible to him
    assert web_client(bob).post(f"/annotate/leases/{lease.pk}/release/").status_code == 404
    released = web_client(manager).post(f"/annotate/leases/{lease.pk}/release/", follow=True)
    assert "Released v.mp4 (held by alice)." in released.content.decode()
    lease.refresh_from_db()
    assert lease.state == Assignment.State.CANCELLED
    assert "Nobody holds a video of this project right now." in released.content.decode()


def test_workspace_page_data(project, annotator):
    v = video(project, "kitchen.mp4")
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    cup = drafts.do_create_object(annotator, lease, "cup")
    page = web_client(annotator).get(f"/annotate/{lease.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    data = _payload(html)
    assert data["lease"] == {
        "id": lease.pk,
        "kind": "annotate",
        "state": "leased",
        "user": "alice",
        "masklet": None,
        "flagged_frames": [],
        "note": "",
        "editable": True,
    }
    assert data["video"]["frame_url_prefix"] == f"/media/videos/{v.pk}/frames/"
    assert (data["video"]["width"], data["video"]["height"]) == (W, H)
    assert data["objects"] == [
        {
            "id": cup.pk,
            "object_id": 0,
            "label": "cup",
            "status": "draft",
            "kind": "manual",
            "version": 0,
        }
    ]
    assert set(data["routes"]) == {"prompt", "propagate", "model"}
    assert "js/annotator/main.js" in html
    for layer in ("layer-frame", "layer-masks", "layer-prompts", "layer-cursor"):
        assert f'id="{layer}"' in html


def test_someone_elses_lease_is_a_404_and_a_manager_reads_it(
    project, annotator, bob, manager, outsider
):
    video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    assert web_client(bob).get(f"/annotate/{lease.pk}/").status_code == 404
    assert web_client(outsider).get(f"/annotate/{lease.pk}/").status_code == 404
    assert web_client(annotator).get("/annotate/999999/").status_code == 404
    as_manager = web_client(manager).get(f"/annotate/{lease.pk}/")
    assert as_manager.status_code == 200
    assert _payload(as_manager.content.decode())["lease"]["editable"] is False
    assert 'id="read-only"' in as_manager.content.decode()


@pytest.mark.parametrize(
    ("phase", "shown", "sends", "hidden"),
    [
        (
            Project.Phase.SAM_PER_FRAME,
            ["click", "box", "brush", "eraser"],
            {"click": "image_click", "box": "image_box"},
            ["propagate"],
        ),
        (
            Project.Phase.SAM2_MASK,
            ["click", "box", "brush", "eraser", "propagate"],
            {"click": "image_click", "box": "image_box", "propagate": "propagate"},
            [],
        ),
        (
            Project.Phase.SAM2_FULL,
            ["click", "box", "brush", "eraser", "propagate"],
            {"click": "video_click", "box": "video_box", "propagate": "propagate"},
            [],
        ),
    ],
)
def test_workspace_offers_the_phase_tools_only(project, annotator, phase, shown, sends, hidden):
    project.phase = phase
    project.save(update_fields=["phase"])
    video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    html = web_client(annotator).get(f"/annotate/{lease.pk}/").content.decode()
    data = _payload(html)
    assert sorted(data["tools"]) == sorted(shown)
    for tool, phase_tool in sends.items():
        assert data["tools"][tool] == phase_tool
    for tool in ("click", "box", "brush", "eraser"):
        assert (f'data-tool="{tool}"' in html) == (tool in shown)
    assert ('class="propagate' in html) == ("propagate" in shown)
    for tool in hidden:
        assert tool not in data["tools"]


def test_fix_lease_workspace_shows_its_masklet_and_flagged_frames(project, annotator):
    v = video(project)
    masklet = sent_back_for_fix(v, annotator, {2: box_mask(1, 1), 5: box_mask(3, 3)})
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    assert lease.kind == Assignment.Kind.FIX
    html = web_client(annotator).get(f"/annotate/{lease.pk}/").content.decode()
    data = _payload(html)
    assert [o["id"] for o in data["objects"]] == [masklet.pk]
    assert data["lease"]["flagged_frames"] == [2, 5]
    assert 'id="add-object"' not in html  # a fix edits its own masklet
    assert 'id="finish-video"' not in html


def test_next_video_from_the_page_warms_the_model_session(
    project,
    annotator,
    tiny_model,  # noqa: F811 (the fixture imported above)
    settings,
    django_capture_on_commit_callbacks,
):
    # given a configured model and warm-up on (the serving fixture turns it off)
    settings.ANNOTATION_WARM_FRAMES = 2
    v = video(project, "kitchen.mp4")
    # when the annotator takes the next video on the queue page
    with django_capture_on_commit_callbacks(execute=True):
        web_client(annotator).post(f"/annotate/projects/{project.pk}/next/")
    # then an interactive worker is asked to embed its first frames for her
    assert [("workers.annotation_warm", [v.pk, annotator.pk], "interactive")] == SENT
