"""Who may submit a masklet, and whom a reviewer may hand a fix to."""

from __future__ import annotations

import pytest

from engine.accounts.projects import do_create_project, do_create_user, do_set_membership
from engine.masklets.revisions import FrameMask, do_create_masklet
from engine.masks.rle import encode_rle
from engine.models import Assignment, Masklet, Review
from tests._clients import api_client
from tests._masklets import ready_video, square, submitted_masklet

H, W = 16, 20


def _draft(video, author) -> Masklet:
    return do_create_masklet(
        video, author=author, frames={0: FrameMask(encode_rle(square(H, W, 2, 2, 4)))}
    )


@pytest.fixture
def video(project):
    return ready_video(project, height=H, width=W, frame_count=4)


@pytest.fixture
def bob(project):
    """A second annotator of the project."""
    user = do_create_user("bob", "bob-pass", "annotator")
    do_set_membership(project, user, "annotator")
    return user


# --- submitting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["bob", "reviewer"])
def test_members_cannot_submit_someone_elses_draft(video, annotator, reviewer, bob, who):
    draft = _draft(video, annotator)
    intruder = {"bob": bob, "reviewer": reviewer}[who]
    response = api_client(intruder).post(f"/api/masklets/{draft.pk}/submit/", {}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"
    draft.refresh_from_db()
    assert draft.status == Masklet.Status.DRAFT


def test_author_and_manager_may_submit(video, annotator, manager):
    mine = _draft(video, annotator)
    response = api_client(annotator).post(f"/api/masklets/{mine.pk}/submit/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "submitted"
    other = _draft(video, annotator)
    response = api_client(manager).post(f"/api/masklets/{other.pk}/submit/", {}, format="json")
    assert response.status_code == 200, response.content


def test_fix_assignee_may_resubmit_their_fix(video, annotator, reviewer, bob):
    masklet = submitted_masklet(video, annotator, {0: square(H, W, 2, 2, 4)})
    posted = api_client(reviewer).post(
        f"/api/masklets/{masklet.pk}/reviews/",
        {
            "revision": masklet.current_revision_id,
            "verdict": "unsatisfactory",
            "flagged_frames": [0],
            "fix_assignee": bob.pk,
        },
        format="json",
    )
    assert posted.status_code == 201, posted.content
    stranger = do_create_user("carl", "carl-pass", "annotator")
    do_set_membership(video.project, stranger, "annotator")
    refused = api_client(stranger).post(f"/api/masklets/{masklet.pk}/submit/", {}, format="json")
    assert refused.status_code == 403
    response = api_client(bob).post(f"/api/masklets/{masklet.pk}/submit/", {}, format="json")
    assert response.status_code == 200, response.content
    assert Assignment.objects.get(kind="fix").state == "done"


# --- choosing a fix assignee --------------------------------------------------------------------


def test_fix_assignee_lookup_is_scoped_and_reveals_nothing(
    video, annotator, reviewer, manager, outsider, bob
):
    elsewhere = do_create_project("Other", manager)
    do_set_membership(elsewhere, outsider, "annotator")
    masklet = submitted_masklet(video, annotator, {0: square(H, W, 2, 2, 4)})
    url = f"/api/masklets/{masklet.pk}/reviews/"
    body = {"revision": masklet.current_revision_id, "verdict": "unsatisfactory"}
    client = api_client(reviewer)
    answers = []
    for assignee in (outsider.pk, outsider.pk + 10_000, reviewer.pk):
        response = client.post(url, {**body, "fix_assignee": assignee}, format="json")
        assert response.status_code == 400, response.content
        answers.append(response.json())
    assert answers[0] == answers[1] == answers[2]
    assert "oscar" not in str(answers[0])
    assert str(outsider.pk) not in answers[0]["detail"]
    assert not Review.objects.exists()
    ok = client.post(url, {**body, "fix_assignee": bob.pk}, format="json")
    assert ok.status_code == 201, ok.content
    assert Assignment.objects.get(kind="fix").user == bob
