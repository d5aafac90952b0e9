"""The estimator: a calibrated logistic regression stored as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.quality.estimator import QualityEstimator, fit, roc_auc
from engine.quality.features import FEATURE_NAMES

F = len(FEATURE_NAMES)


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Failures have a higher 'jitter' and a lower 'iou_mean'; other features are noise and
    a third of the stability values are missing."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(float)
    x = rng.normal(size=(n, F))
    x[:, FEATURE_NAMES.index("jitter")] += 1.5 * y
    x[:, FEATURE_NAMES.index("iou_mean")] -= 1.5 * y
    x[rng.random(n) < 0.33, FEATURE_NAMES.index("stability_mean")] = np.nan
    return x, y


def test_roc_auc_counts_pairs_and_ties():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.5, 0.5], [0, 1]) == 0.5
    assert np.isnan(roc_auc([0.1, 0.2], [1, 1]))


def test_it_ranks_failures_above_good_masklets_on_held_out_rows():
    x, y = _synthetic(200, seed=1)
    held_x, held_y = _synthetic(200, seed=2)
    model = fit(x, y)
    p = model.failure_probability(held_x)
    assert roc_auc(p, held_y) > 0.85
    assert model.metrics["cv_auc"] > 0.8
    assert np.all((p > 0) & (p < 1))


def test_calibrated_probabilities_match_the_failure_rate():
    x, y = _synthetic(400, seed=3)
    held_x, held_y = _synthetic(2000, seed=4)
    p = fit(x, y).failure_probability(held_x)
    assert abs(p.mean() - held_y.mean()) < 0.05
    confident = p < 0.1
    assert held_y[confident].mean() < 0.15


def test_json_round_trip_gives_the_same_probabilities():
    x, y = _synthetic(120, seed=5)
    model = fit(x, y)
    again = QualityEstimator.from_json(json.loads(json.dumps(model.to_json())))
    np.testing.assert_allclose(again.failure_probability(x), model.failure_probability(x))


def test_it_needs_both_classes_and_the_known_features():
    x, y = _synthetic(30, seed=6)
    with pytest.raises(ValueError, match="both"):
        fit(x, np.zeros(30))
    with pytest.raises(ValueError):
        fit(x[:, :5], y)
    params = fit(x, y).to_json()
    params["features"] = params["features"][:-1]
    with pytest.raises(ValueError, match="retrain"):
        QualityEstimator.from_json(params)
