"""In real Chromium: a manager registers a checkpoint on the models page, promotes it and rolls
back, each after its confirmation page; the rounds page shows a round's loss curve; an annotator
reads the models page but has no buttons and gets 403 on a promote URL.

Screenshots go to ``$E2E_SCREENSHOTS`` (default: a folder in the system temp dir).
"""

from __future__ import annotations

import pytest

from engine.models import Job, ModelPromotion, ModelVersion, Round
from engine.training import versions
from tests.e2e._workspace import shot
from tests.e2e.conftest import log_in
from tests.engine.test_auto_masklets import tiny_checkpoint
from tests.engine.training._training import register_tiny

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _status(name: str) -> str:
    return str(ModelVersion.objects.get(name=name).status)


def test_manager_registers_promotes_and_rolls_back(page, manager, annotator, project, tmp_path):
    # given a demo model serving
    demo = register_tiny(tmp_path, "demo-r0", metrics={"demo": True, "heldout": {"jf_3": 0.41}})
    versions.do_promote(None, demo)
    log_in(page, "maria", "maria-pass")
    page.get_by_role("link", name="Models").click()
    page.wait_for_url("**/models/")
    assert "demo-r0" in page.locator("#serving-name").inner_text()
    assert page.locator("#demo-badge").is_visible()
    shot(page, "models-demo-serving")

    # when the manager uploads a checkpoint, it is registered as a candidate
    ckpt = tiny_checkpoint(tmp_path / "finetuned.pt", seed=5)
    page.fill("#register-form input[name=name]", "finetuned-r1")
    page.select_option("#register-form select[name=config]", "test_tiny")
    page.set_input_files("#register-form input[name=file]", str(ckpt))
    page.click("#register-form button[type=submit]")
    row = page.locator("tr[data-status=candidate]", has_text="finetuned-r1")
    row.wait_for()
    assert "Registered 'finetuned-r1' as a candidate" in page.locator(".messages").inner_text()
    shot(page, "models-registered")

    # and a file of another config is refused with the reason
    page.fill("#register-form input[name=name]", "wrong")
    page.select_option("#register-form select[name=config]", "sam2.1_hiera_t")
    page.set_input_files("#register-form input[name=file]", str(ckpt))
    page.click("#register-form button[type=submit]")
    page.locator(".messages", has_text="Not registered").wait_for()
    assert not ModelVersion.objects.filter(name="wrong").exists()

    # promote after confirming
    row.get_by_role("link", name="Promote…").click()
    page.locator("#confirm", has_text="Promote finetuned-r1?").wait_for()
    assert _status("finetuned-r1") == "candidate"
    shot(page, "models-confirm-promote")
    page.click("#confirm-button")
    page.locator("#serving-name", has_text="finetuned-r1").wait_for()
    assert page.locator("#demo-badge").count() == 0
    assert (_status("finetuned-r1"), _status("demo-r0")) == ("promoted", "retired")
    shot(page, "models-promoted")

    # roll back after confirming
    page.click("#rollback-link")
    page.locator("#confirm", has_text="Roll back to demo-r0?").wait_for()
    page.click("#confirm-button")
    page.locator("#serving-name", has_text="demo-r0").wait_for()
    assert (_status("finetuned-r1"), _status("demo-r0")) == ("retired", "promoted")
    assert list(ModelPromotion.objects.order_by("id").values_list("action", flat=True)) == [
        "promote",
        "promote",
        "rollback",
    ]
    assert "Rolled back to demo-r0" in page.locator("#history").inner_text()
    shot(page, "models-rolled-back")

    # the rounds page draws a round's loss curve
    Round.objects.create(
        project=project,
        number=1,
        phase=3,
        metrics={
            "status": "succeeded",
            "loss_curve": [[1, 3.0], [2, 2.1], [3, 1.7], [4, 1.2]],
            "candidate_scores": {"jf_3": 0.62},
            "baseline_scores": {"jf_3": 0.41},
            "promoted": True,
            "reason": "promoted: held-out jf_3 +0.21",
        },
    )
    page.goto(f"/projects/{project.pk}/rounds/")
    curve = page.locator("tr[data-round='1'] svg.loss-curve polyline")
    assert len(curve.get_attribute("points").split()) == 4
    assert not page.locator("#active-curve").is_visible()
    shot(page, "rounds-history")

    # while a round runs, the page polls its progress and draws its loss curve so far
    running = Job.objects.create(
        kind=Job.Kind.TRAIN,
        project=project,
        status=Job.Status.RUNNING,
        progress=0.3,
        message="round 2: step 3/10, loss 1.9000",
    )
    live = Round.objects.create(
        project=project, number=2, phase=3, job=running, metrics={"status": "running"}
    )
    page.goto(f"/projects/{project.pk}/rounds/")
    assert page.locator("#cancel-round").is_visible()
    Round.objects.filter(pk=live.pk).update(
        metrics={"status": "running", "loss_curve": [[1, 2.5], [2, 2.2], [3, 1.9]]}
    )
    page.wait_for_function(
        "document.querySelector('#active-curve polyline').getAttribute('points').split(' ')"
        ".length === 3"
    )
    assert "step 3/10" in page.locator("#active-message").inner_text()
    shot(page, "rounds-running")
    # when it ends, the page reloads into the history
    Job.objects.filter(pk=running.pk).update(status=Job.Status.SUCCEEDED)
    page.locator("tr[data-round='2'][data-status='succeeded']").wait_for()
    assert page.locator("#start-round").is_visible()

    # an annotator reads the models page but may not act
    page.context.clear_cookies()
    log_in(page, "alice", "alice-pass")
    page.goto("/models/")
    assert page.locator("#register-form").count() == 0
    assert page.get_by_role("link", name="Promote…").count() == 0
    finetuned = ModelVersion.objects.get(name="finetuned-r1")
    response = page.goto(f"/models/{finetuned.pk}/promote/")
    assert response is not None
    assert response.status == 403
    assert _status("demo-r0") == "promoted"
