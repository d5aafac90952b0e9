"""Quality REST API: jitter and frame marks of a masklet, the project's estimator and the
auto-accept switch (managers only), and the schema."""

from __future__ import annotations

import pytest

from engine.models import Masklet, QualitySettings
from engine.quality.training import QualityPolicy, do_train_quality_model
from tests._clients import api_client
from tests._quality import bad_masks, good_masks, reviewed_examples, submit


@pytest.mark.django_db
def test_masklet_quality_gives_jitter_and_the_frames_to_check(project, annotator, reviewer):
    lost = good_masks()
    lost[6] = None  # the object lost on frame 6
    masklet = submit(project, annotator, lost, "lost.mp4")
    steady = submit(project, annotator, good_masks(), "steady.mp4")
    shaky = submit(project, annotator, bad_masks(1), "shaky.mp4")

    data = api_client(reviewer).get(f"/api/masklets/{masklet.pk}/quality/").json()
    assert data["measured"] == "revision"
    assert data["revision"] == masklet.current_revision_id
    assert data["marks"] == [6]
    assert data["frame_suspicion"]["6"] == 1.0
    assert data["failure_probability"] is None  # no estimator trained yet
    assert data["auto_accepted"] is False

    def jitter(m: Masklet) -> float:
        return api_client(reviewer).get(f"/api/masklets/{m.pk}/quality/").json()["jitter"]

    assert jitter(steady) == 0.0
    assert jitter(shaky) > 0.05


@pytest.mark.django_db
def test_masklet_quality_is_scoped_to_project_members(project, annotator, outsider):
    masklet = submit(project, annotator, good_masks(), "m.mp4")
    response = api_client(outsider).get(f"/api/masklets/{masklet.pk}/quality/")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_estimate_appears_once_trained(project, annotator, reviewer, manager):
    reviewed_examples(project, annotator, manager, per_class=3)
    do_train_quality_model(project, QualityPolicy(min_per_class=3))
    masklet = submit(project, annotator, bad_masks(77), "b.mp4")
    data = api_client(reviewer).get(f"/api/masklets/{masklet.pk}/quality/").json()
    assert data["failure_probability"] > 0.5
    assert data["acceptance_probability"] == pytest.approx(1 - data["failure_probability"])
    project_data = api_client(reviewer).get(f"/api/projects/{project.pk}/quality/").json()
    assert project_data["trained"] is True
    assert project_data["estimator"]["verdicts"] == 6
    assert project_data["verdicts"] == {"accepted": 3, "failed": 3}


@pytest.mark.django_db
def test_auto_accept_is_off_by_default_and_managers_switch_it(project, manager, reviewer):
    url = f"/api/projects/{project.pk}/quality/"
    data = api_client(reviewer).get(url).json()
    assert (data["auto_accept"], data["trained"], data["estimator"]) == (False, False, None)

    refused = api_client(reviewer).patch(url, {"auto_accept": True}, format="json")
    assert refused.status_code == 403
    assert not QualitySettings.objects.filter(project=project).exists()

    switched = api_client(manager).patch(
        url, {"auto_accept": True, "auto_accept_threshold": 0.9}, format="json"
    )
    assert switched.status_code == 200
    assert switched.json()["auto_accept"] is True
    assert switched.json()["auto_accept_threshold"] == 0.9

    bad = api_client(manager).patch(url, {"auto_accept": True, "auto_accept_threshold": 2})
    assert bad.status_code == 400


@pytest.mark.django_db
def test_retraining_now_is_for_managers(settings, project, annotator, reviewer, manager):
    settings.QUALITY_MIN_VERDICTS_PER_CLASS = 2
    reviewed_examples(project, annotator, reviewer, per_class=2)
    url = f"/api/projects/{project.pk}/quality/train/"
    assert api_client(reviewer).post(url).status_code == 403
    answer = api_client(manager).post(url)
    assert answer.status_code == 200
    assert answer.json()["trained"] is True


@pytest.mark.django_db
def test_the_workspace_reads_the_marks_of_its_draft(project, annotator):
    from engine.masklets.revisions import FrameMask, do_create_masklet
    from engine.masks.rle import encode_rle
    from tests._quality import video_for

    masks = good_masks()
    masks[3] = None
    frames = {i: FrameMask(None if m is None else encode_rle(m), "click") for i, m in masks.items()}
    draft = do_create_masklet(video_for(project), author=annotator, frames=frames)
    data = api_client(annotator).get(f"/api/masklets/{draft.pk}/quality/?draft=1").json()
    assert data["measured"] == "draft"
    assert data["marks"] == [3]


def test_the_schema_documents_the_quality_endpoints(client, manager):
    client.force_login(manager)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/masklets/{masklet_id}/quality/" in schema["paths"]
    quality = schema["components"]["schemas"]["MaskletQuality"]["properties"]
    assert {"jitter", "marks", "frame_suspicion", "failure_probability"} <= set(quality)
    assert "patch" in schema["paths"]["/api/projects/{project_id}/quality/"]
