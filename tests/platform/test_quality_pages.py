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
