"""The review page carries the quality panel (jitter, estimate, frames to check) that
js/review.js fills from the quality API."""

from __future__ import annotations

import pytest

from tests._clients import web_client
from tests._quality import good_masks, submit


@pytest.mark.django_db
def test_review_page_has_the_quality_panel(project, annotator, reviewer):
    lost = good_masks()
    lost[5] = None
    masklet = submit(project, annotator, lost, "lost.mp4")
    html = web_client(reviewer).get(f"/review/masklets/{masklet.pk}/").content.decode()
    assert f'id="quality-panel" data-masklet="{masklet.pk}"' in html
    for element in ("quality-jitter", "quality-estimate", "quality-marks"):
        assert f'id="{element}"' in html
    assert ".timeline .cell.suspect" in html
    # what the panel's script reads, through the reviewer's session
    data = web_client(reviewer).get(f"/api/masklets/{masklet.pk}/quality/").json()
    assert data["marks"] == [5]
    assert data["jitter"] == 0.0


@pytest.mark.django_db
def test_the_quality_page_shows_the_state_and_managers_switch_auto_accept(
    project, manager, reviewer, outsider
):
    url = f"/projects/{project.pk}/quality/"
    page = web_client(reviewer).get(url).content.decode()
    assert 'id="auto-accept-state">off<' in page
    assert "Not trained yet" in page
    assert 'id="auto-accept-form"' not in page  # reviewers read only
    assert web_client(outsider).get(url).status_code == 404

    refused = web_client(reviewer).post(f"{url}auto-accept/", {"auto_accept": "on"})
    assert refused.status_code == 403
    saved = web_client(manager).post(
        f"{url}auto-accept/", {"auto_accept": "on", "auto_accept_threshold": "0.97"}, follow=True
    )
    html = saved.content.decode()
    assert "Auto-accept settings saved" in html
    assert 'id="auto-accept-state">on<' in html
    assert "≥ 0.97" in html
    bad = web_client(manager).post(
        f"{url}auto-accept/", {"auto_accept": "on", "auto_accept_threshold": "3"}, follow=True
    )
    assert "Auto-accept not changed" in bad.content.decode()


@pytest.mark.django_db
def test_retrain_now_needs_enough_verdicts(settings, project, manager, annotator, reviewer):
    from tests._quality import reviewed_examples

    settings.QUALITY_MIN_VERDICTS_PER_CLASS = 2
    url = f"/projects/{project.pk}/quality/retrain/"
    assert "Not trained" in web_client(manager).post(url, follow=True).content.decode()
    reviewed_examples(project, annotator, reviewer, per_class=2)
    assert web_client(reviewer).post(url).status_code == 403
    html = web_client(manager).post(url, follow=True).content.decode()
    assert "Quality estimator retrained" in html
    assert "cross-validated ROC AUC" in html
