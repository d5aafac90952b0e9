"""Training the estimator on reviewer verdicts; when it may train; scores kept current."""

from __future__ import annotations

import pytest

from engine.models import Masklet, QualityModel, Review, RevisionQuality
from engine.quality import training
from engine.quality.estimator import roc_auc
from engine.quality.scoring import current_estimator, do_score_revision
from engine.quality.training import QualityPolicy, do_train_quality_model
from tests._quality import bad_masks, good_masks, review, reviewed_examples, submit

POLICY = QualityPolicy(min_per_class=3, retrain_after=2)


def _failure(masklet: Masklet) -> float:
    assert masklet.current_revision is not None
    p = do_score_revision(masklet.current_revision).failure_probability
    assert p is not None
    return p


@pytest.mark.django_db
def test_no_estimator_until_enough_verdicts_of_each_class(project, annotator, reviewer):
    for k in range(5):
        review(submit(project, annotator, good_masks(k), f"g{k}.mp4"), reviewer, "satisfactory")
    review(submit(project, annotator, bad_masks(0), "b0.mp4"), reviewer, "reject")
    assert training.verdict_counts(project) == training.VerdictCounts(accepted=5, failed=1)
    assert do_train_quality_model(project, POLICY) is None
    assert do_train_quality_model(project, POLICY, force=True) is None
    assert current_estimator(project) is None


@pytest.mark.django_db
def test_it_trains_on_verdicts_and_ranks_bad_masklets_above_good_ones(project, annotator, reviewer):
    # given
    reviewed_examples(project, annotator, reviewer, per_class=4)
    # when
    model = do_train_quality_model(project, POLICY)
    # then
    assert model is not None
    assert (model.accepted, model.failed, model.verdicts) == (4, 4, 8)
    assert model.params["features"][0] == "frames"  # JSON, not a pickle
    loaded = current_estimator(project)
    assert loaded is not None
    assert loaded.row == model
    fresh = [submit(project, annotator, good_masks(k), f"ng{k}.mp4") for k in range(3)]
    fresh += [submit(project, annotator, bad_masks(10 + k), f"nb{k}.mp4") for k in range(3)]
    scores = [_failure(m) for m in fresh]
    assert roc_auc(scores, [0, 0, 0, 1, 1, 1]) == 1.0
    assert max(scores[:3]) < 0.5 < min(scores[3:])


@pytest.mark.django_db
def test_retraining_waits_for_enough_new_verdicts(project, annotator, reviewer):
    reviewed_examples(project, annotator, reviewer, per_class=3)
    first = do_train_quality_model(project, POLICY)
    assert first is not None
    assert do_train_quality_model(project, POLICY) is None  # no new verdicts
    review(submit(project, annotator, good_masks(9), "x.mp4"), reviewer, "satisfactory")
    assert do_train_quality_model(project, POLICY) is None  # one new, two needed
    review(submit(project, annotator, bad_masks(9), "y.mp4"), reviewer, "unsatisfactory")
    second = do_train_quality_model(project, POLICY)
    assert second is not None
    assert second.verdicts == 8
    assert QualityModel.objects.filter(project=project).count() == 2


@pytest.mark.django_db
def test_training_rescores_the_waiting_masklets_with_the_new_estimator(
    project, annotator, reviewer
):
    waiting = submit(project, annotator, bad_masks(42), "waiting.mp4")
    assert waiting.current_revision is not None
    row = do_score_revision(waiting.current_revision)
    assert row.failure_probability is None
    assert row.jitter > 0
    reviewed_examples(project, annotator, reviewer, per_class=3)
    model = do_train_quality_model(project, POLICY)
    row = RevisionQuality.objects.get(revision=waiting.current_revision)
    assert row.quality_model == model
    assert row.failure_probability is not None
    assert row.failure_probability > 0.5


@pytest.mark.django_db
def test_only_human_verdicts_are_examples(project, annotator, reviewer):
    reviewed_examples(project, annotator, reviewer, per_class=2)
    labels = sorted(failed for _, failed in training.project_verdicts(project))
    assert labels == [0, 0, 1, 1]
    assert Review.objects.count() == 4


@pytest.mark.django_db
def test_rescoring_visits_only_missing_or_stale_scores_in_bounded_batches(
    project, annotator, reviewer, manager
):
    for k in range(3):
        submit(project, annotator, good_masks(k), f"w{k}.mp4")
    assert training.do_rescore_waiting(project, limit=2) == 2
    assert training.do_rescore_waiting(project, limit=2) == 1
    assert training.do_rescore_waiting(project) == 0  # all scored, nothing trained: up to date
    reviewed_examples(project, annotator, manager, per_class=3)
    model = do_train_quality_model(project, POLICY)  # re-scores the waiting ones itself
    assert model is not None
    assert training.do_rescore_waiting(project) == 0
    # the waiting ones carry its estimate; the judged ones only their features
    assert RevisionQuality.objects.filter(quality_model=model).count() == 3
    assert RevisionQuality.objects.count() == 3 + 6
