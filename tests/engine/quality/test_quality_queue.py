"""The review queue: likely failures first once trained, the plain order otherwise."""

from __future__ import annotations

import pytest

from engine.quality.training import QualityPolicy, do_rescore_waiting, do_train_quality_model
from engine.review import queue
from tests._quality import bad_masks, good_masks, reviewed_examples, submit

POLICY = QualityPolicy(min_per_class=3, retrain_after=2)


def _waiting(project, annotator):
    """Two good masklets submitted before two bad ones (the plain order is oldest first)."""
    good = [submit(project, annotator, good_masks(k), f"wg{k}.mp4") for k in range(2)]
    bad = [submit(project, annotator, bad_masks(20 + k), f"wb{k}.mp4") for k in range(2)]
    return good, bad


@pytest.mark.django_db
def test_untrained_the_queue_keeps_its_plain_order(project, annotator, reviewer):
    good, bad = _waiting(project, annotator)
    do_rescore_waiting(project)  # features but no estimate: order unchanged
    order = list(queue.review_queue(reviewer, project).values_list("pk", flat=True))
    assert order == [m.pk for m in good + bad]


@pytest.mark.django_db
def test_trained_the_queue_puts_likely_failures_first(project, annotator, reviewer, manager):
    # given: the plain order puts the good masklets first
    good, bad = _waiting(project, annotator)
    reviewed_examples(project, annotator, manager, per_class=3)
    # when
    assert do_train_quality_model(project, POLICY) is not None
    # then
    order = list(queue.review_queue(reviewer, project).values_list("pk", flat=True))
    assert set(order[:2]) == {m.pk for m in bad}
    assert set(order[2:]) == {m.pk for m in good}
    taken = queue.do_take_next_review(reviewer, project)
    assert taken is not None
    assert taken.pk in {m.pk for m in bad}


@pytest.mark.django_db
def test_unscored_masklets_follow_the_scored_ones_in_plain_order(
    project, annotator, reviewer, manager
):
    reviewed_examples(project, annotator, manager, per_class=3)
    assert do_train_quality_model(project, POLICY) is not None
    late = [submit(project, annotator, good_masks(k), f"late{k}.mp4") for k in range(2)]
    scored = submit(project, annotator, good_masks(5), "scored.mp4")
    do_rescore_waiting(project)
    late2 = submit(project, annotator, bad_masks(3), "late2.mp4")
    order = list(queue.review_queue(reviewer, project).values_list("pk", flat=True))
    assert order[-1] == late2.pk  # not scored yet: after every scored one
    assert set(order[:-1]) == {m.pk for m in [*late, scored]}
