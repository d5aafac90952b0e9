"""The models and rounds pages: what they show (serving model, demo label, scores, lineage,
rounds with loss curves, plots), the confirmation steps, and who may do what."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from engine.models import Job, ModelVersion, Round
from engine.training import versions
from tests._clients import web_client
from tests.engine.test_auto_masklets import tiny_checkpoint
from tests.engine.training._training import register_tiny

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(settings) -> None:
    settings.TASK_SENDER = "tests.platform.test_training_api.drop_send"


def test_models_page_shows_the_serving_demo_model_scores_and_lineage(
    tmp_path: Path, annotator, project
) -> None:
    base = register_tiny(tmp_path, "demo-base", metrics={"demo": True, "heldout": {"jf_3": 0.5}})
    versions.do_promote(None, base)
    register_tiny(tmp_path, "child", seed=1, parent=base, metrics={"heldout": {"jf_3": 0.625}})
    page = web_client(annotator).get("/models/").content.decode()
    assert 'id="demo-badge"' in page
    assert "Demo model" in page
    assert '<strong id="serving-name">demo-base</strong>' in page
    assert "0.625" in page
    assert "0.500" in page
    assert "demo-base" in page.split('data-status="candidate"')[1]  # the child's parent column
    # members read, they do not act
    assert "Promote…" not in page
    assert 'id="register-form"' not in page


def test_promote_and_rollback_go_through_a_confirmation_page(
    tmp_path: Path, manager, project
) -> None:
    client = web_client(manager)
    first = register_tiny(tmp_path, "first")
    versions.do_promote(None, first)
    upload = SimpleUploadedFile("c.pt", tiny_checkpoint(tmp_path / "c.pt", seed=2).read_bytes())
    client.post("/models/register/", {"name": "second", "config": "test_tiny", "file": upload})
    second = ModelVersion.objects.get(name="second")
    confirm = client.get(f"/models/{second.pk}/promote/")
    assert "Promote second?" in confirm.content.decode()
    assert ModelVersion.objects.get(pk=second.pk).status == "candidate"  # GET changes nothing
    client.post(f"/models/{second.pk}/promote/")
    assert ModelVersion.objects.get(pk=second.pk).status == "promoted"
    page = client.get("/models/").content.decode()
    assert "Roll back to first" in page
    assert "Roll back to first?" in client.get("/models/rollback/").content.decode()
    client.post("/models/rollback/")
    assert ModelVersion.objects.get(pk=first.pk).status == "promoted"
    assert ModelVersion.objects.get(pk=second.pk).status == "retired"


def test_a_bad_upload_is_reported_on_the_page(tmp_path: Path, manager) -> None:
    junk = SimpleUploadedFile("junk.pt", b"junk")
    answer = web_client(manager).post(
        "/models/register/", {"name": "j", "config": "test_tiny", "file": junk}, follow=True
    )
    assert "Not registered" in answer.content.decode()
    assert not ModelVersion.objects.exists()


def test_non_managers_get_403_on_model_and_round_actions(
    tmp_path: Path, project, annotator, outsider
) -> None:
    version = register_tiny(tmp_path, "v")
    for user in (annotator, outsider):
        client = web_client(user)
        assert client.post(f"/models/{version.pk}/promote/").status_code == 403
        assert client.post("/models/rollback/").status_code == 403
        assert client.post("/models/register/", {"name": "x"}).status_code == 403
        start = client.post(f"/projects/{project.pk}/rounds/start/")
        assert start.status_code == (404 if user == outsider else 403)
    assert web_client(outsider).get("/models/").status_code == 403
    assert ModelVersion.objects.get(pk=version.pk).status == "candidate"
    assert not Job.objects.exists()


def test_rounds_page_shows_history_curves_settings_and_plots(manager, project) -> None:
    Round.objects.create(
        project=project,
        number=1,
        phase=3,
        metrics={
            "status": "succeeded",
            "loss_curve": [[0, 2.0], [1, 1.5], [2, 1.0]],
            "candidate_scores": {"jf_3": 0.71},
            "baseline_scores": {"jf_3": 0.52},
            "promoted": True,
            "reason": "promoted: better",
        },
    )
    default_storage.save(f"simulation/{project.pk}/rounds.png", ContentFile(b"\x89PNG fake"))
    client = web_client(manager)
    page = client.get(f"/projects/{project.pk}/rounds/").content.decode()
    assert 'data-round="1"' in page
    assert "0.710" in page
    assert "promoted: better" in page
    assert '<polyline fill="none" stroke="#2456d6" stroke-width="1.5" points="6.0,' in page
    assert 'id="settings-form"' in page
    assert 'id="start-round"' in page
    assert f"/projects/{project.pk}/rounds/plots/rounds.png" in page
    plot = client.get(f"/projects/{project.pk}/rounds/plots/rounds.png")
    assert plot.status_code == 200
    assert plot.getvalue() == b"\x89PNG fake"
    assert client.get(f"/projects/{project.pk}/rounds/plots/..%2Fx.png").status_code == 404


def test_start_cancel_and_settings_from_the_page(manager, annotator, project) -> None:
    client = web_client(manager)
    client.post(f"/projects/{project.pk}/rounds/start/", {"steps": "7"})
    job = Job.objects.get(kind="train")
    assert job.args["steps"] == 7
    page = client.get(f"/projects/{project.pk}/rounds/").content.decode()
    assert 'id="cancel-round"' in page
    assert 'data-active="1"' in page
    client.post(f"/projects/{project.pk}/rounds/cancel/")
    job.refresh_from_db()
    assert job.status == "cancelled"
    client.post(
        f"/projects/{project.pk}/rounds/settings/",
        {"enabled": "on", "min_new_masklets": "4", "interval_hours": "0", "steps": "9"},
    )
    from engine.training.triggers import get_round_settings

    row = get_round_settings(project)
    assert (row.enabled, row.min_new_masklets, row.interval_hours, row.steps) == (True, 4, 0.0, 9)
    member_page = web_client(annotator).get(f"/projects/{project.pk}/rounds/").content.decode()
    assert 'id="settings-form"' not in member_page
    assert "Automatic rounds: on" in member_page
