"""In real Chromium: the review page shows the masklet's jitter and marks the frames the quality
checks suggest on the player's timeline; a click on a mark jumps to that frame."""

from __future__ import annotations

import pytest

from tests._quality import bad_masks, good_masks, submit
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_review_page_shows_jitter_and_marks_frames(page, project, annotator, reviewer):
    lost = good_masks()
    lost[6] = None  # the object lost on frame 6
    masklet = submit(project, annotator, lost, "lost.mp4")
    log_in(page, "rene", "rene-pass")

    page.goto(f"/review/masklets/{masklet.pk}/")
    page.wait_for_selector("#quality-panel[data-loaded=true]")

    assert page.inner_text("#quality-jitter") == "0.000 (steady)"
    assert page.inner_text("#quality-estimate") == "no estimator trained yet"
    assert page.inner_text("#quality-marks") == "6"
    suspect = page.eval_on_selector_all(
        "#timeline .cell.suspect", "cells => cells.map(c => Number(c.dataset.frame))"
    )
    assert suspect == [6]
    assert "likely needs a correction" in page.get_attribute("#timeline .cell.suspect", "title")
    page.click("#quality-marks a")
    page.wait_for_function("document.getElementById('frame-canvas').dataset.frame === '6'")


def test_a_shaky_masklet_reads_shaky(page, project, annotator, reviewer):
    shaky = submit(project, annotator, bad_masks(3), "shaky.mp4")
    log_in(page, "rene", "rene-pass")
    page.goto(f"/review/masklets/{shaky.pk}/")
    page.wait_for_selector("#quality-panel[data-loaded=true]")
    assert page.inner_text("#quality-jitter").endswith("(shaky)")
    assert page.get_attribute("#quality-jitter", "class") == "shaky"
