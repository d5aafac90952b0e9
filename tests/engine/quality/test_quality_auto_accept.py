"""Calibrated auto-accept: off by default, refused untrained, managers only, audited."""

from __future__ import annotations

import pytest

from engine.accounts.access import AccessDenied
from engine.errors import InvalidInput
from engine.models import Masklet, Review, RevisionQuality
from engine.quality.auto_accept import do_auto_accept, do_set_auto_accept, quality_settings
from engine.quality.sweep import do_quality_sweep
from engine.quality.training import QualityPolicy, do_train_quality_model
from engine.review import queue
from tests._quality import bad_masks, good_masks, reviewed_examples, submit

POLICY = QualityPolicy(min_per_class=3, retrain_after=2)


@pytest.mark.django_db
def test_auto_accept_is_off_by_default(project, annotator, reviewer, manager):
    reviewed_examples(project, annotator, manager, per_class=3)
    do_train_quality_model(project, POLICY)
    masklet = submit(project, annotator, good_masks(1), "g.mp4")
    assert quality_settings(project).auto_accept is False
    decision = do_auto_accept(masklet)
    assert not decision.accepted
    assert "off" in decision.reason
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED


@pytest.mark.django_db
def test_auto_accept_refuses_while_no_estimator_is_trained(project, annotator, manager):
    do_set_auto_accept(manager, project, enabled=True, threshold=0.5)
    masklet = submit(project, annotator, good_masks(1), "g.mp4")
    decision = do_auto_accept(masklet)
    assert not decision.accepted
    assert "trained" in decision.reason
    assert do_quality_sweep(POLICY)["auto_accepted"] == []
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED


@pytest.mark.django_db
def test_switched_on_it_accepts_above_the_threshold_only(project, annotator, reviewer, manager):
    # given
    reviewed_examples(project, annotator, manager, per_class=4)
    do_train_quality_model(project, POLICY)
    good = submit(project, annotator, good_masks(2), "g.mp4")
    bad = submit(project, annotator, bad_masks(33), "b.mp4")
    do_set_auto_accept(manager, project, enabled=True, threshold=0.8)
    # when
    report = do_quality_sweep(POLICY, [project.pk])
    # then
    assert report["auto_accepted"] == [good.pk]
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == Masklet.Status.VERIFIED
    assert bad.status == Masklet.Status.SUBMITTED
    audit = RevisionQuality.objects.get(revision_id=good.current_revision_id)
    assert audit.auto_accepted
    assert audit.auto_accept_threshold == 0.8
    assert audit.auto_accepted_at is not None
    assert audit.failure_probability is not None
    assert 1 - audit.failure_probability >= 0.8
    assert not Review.objects.filter(revision_id=good.current_revision_id).exists()
    assert list(queue.review_queue(reviewer, project)) == [bad]


@pytest.mark.django_db
def test_a_masklet_a_reviewer_holds_is_not_auto_accepted(project, annotator, reviewer, manager):
    reviewed_examples(project, annotator, manager, per_class=3)
    do_train_quality_model(project, POLICY)
    good = submit(project, annotator, good_masks(2), "g.mp4")
    do_set_auto_accept(manager, project, enabled=True, threshold=0.5)
    assert queue.do_open_review(reviewer, good)
    decision = do_auto_accept(good)
    assert not decision.accepted
    assert "reviewer" in decision.reason


@pytest.mark.django_db
def test_only_managers_switch_it_and_thresholds_are_checked(project, reviewer, manager):
    with pytest.raises(AccessDenied):
        do_set_auto_accept(reviewer, project, enabled=True)
    with pytest.raises(InvalidInput):
        do_set_auto_accept(manager, project, enabled=True, threshold=0.2)
    with pytest.raises(InvalidInput):
        do_set_auto_accept(manager, project, enabled=True, threshold=float("nan"))
    row = do_set_auto_accept(manager, project, enabled=True, threshold=0.97)
    assert (row.auto_accept, row.auto_accept_threshold, row.updated_by) == (True, 0.97, manager)
    assert quality_settings(project).auto_accept
