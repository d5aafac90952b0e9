"""The masklet quality estimator: L2 logistic regression with Platt-calibrated probabilities.

Pure numpy (no Django, no pickle): :func:`fit` returns a :class:`QualityEstimator` whose
:meth:`~QualityEstimator.to_json` is what the database keeps (``QualityModel.params``), and
:meth:`~QualityEstimator.from_json` reads it back.

The label is *failure*: 1 when a reviewer found the masklet unsatisfactory or rejected it,
0 when satisfactory, so :meth:`~QualityEstimator.failure_probability` orders the review queue
(likely failures first) and ``1 - p`` is the auto-accept probability.

Calibration: the regression's own outputs are shrunk towards 0.5 by the L2 penalty, so, as
scikit-learn's ``CalibratedClassifierCV(method="sigmoid")`` does, a sigmoid ``p = s(a z + b)``
is fitted on out-of-fold decision values ``z`` (k folds, stratified by label), and the final
regression is refitted on all rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.quality.features import FEATURE_NAMES

PARAMS_VERSION = 1
L2 = 1.0
CLIP = 5.0  # standardised features are clipped: one wild value must not dominate
FOLDS = 5


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """Newton's method on the L2-penalised log loss (the bias is not penalised).

    Args:
        x: (N, F) float64 features, already imputed and standardised.
        y: (N,) 0/1 labels.
    Returns:
        (F,) weights and the bias.
    """
    n, f = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(f + 1)
    penalty = np.full(f + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = _sigmoid(design @ theta)
        grad = design.T @ (p - y) + penalty * theta
        hess = (design.T * (p * (1 - p))) @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def roc_auc(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the chance that a random positive scores
    above a random negative. nan without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


@dataclass
class QualityEstimator:
    """A fitted estimator: imputation, standardisation, weights, calibration."""

    features: list[str]
    impute: list[float]
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    calibration: tuple[float, float] = (1.0, 0.0)
    metrics: dict[str, float] = field(default_factory=dict)

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(x), np.asarray(self.impute), x)
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.clip(z, -CLIP, CLIP)

    def decision(self, x: np.ndarray) -> np.ndarray:
        """(N, F) raw features (nan allowed) -> (N,) uncalibrated logits of failure."""
        return self._standardise(np.atleast_2d(x)) @ np.asarray(self.weights) + self.bias

    def failure_probability(self, x: np.ndarray) -> np.ndarray:
        """(N, F) raw features -> (N,) calibrated probability that a reviewer rejects it."""
        a, b = self.calibration
        return _sigmoid(a * self.decision(x) + b)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PARAMS_VERSION,
            "features": list(self.features),
            "impute": list(self.impute),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
            "calibration": list(self.calibration),
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QualityEstimator:
        if data.get("version") != PARAMS_VERSION:
            raise ValueError(f"unknown quality estimator format {data.get('version')!r}")
        if list(data["features"]) != list(FEATURE_NAMES):
            raise ValueError("the estimator was trained on other features; retrain it")
        a, b = data["calibration"]
        return cls(
            features=list(data["features"]),
            impute=[float(v) for v in data["impute"]],
            mean=[float(v) for v in data["mean"]],
            scale=[float(v) for v in data["scale"]],
            weights=[float(v) for v in data["weights"]],
            bias=float(data["bias"]),
            calibration=(float(a), float(b)),
            metrics={k: float(v) for k, v in data.get("metrics", {}).items()},
        )


def _prepare(x: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    impute = np.nanmean(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
    impute = np.where(np.isnan(impute), 0.0, impute)
    filled = np.where(np.isnan(x), impute, x)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    scale = np.where(scale < 1e-9, 1.0, scale)
    return [float(v) for v in impute], [float(v) for v in mean], [float(v) for v in scale]


def _uncalibrated(x: np.ndarray, y: np.ndarray, l2: float) -> QualityEstimator:
    impute, mean, scale = _prepare(x)
    model = QualityEstimator(list(FEATURE_NAMES), impute, mean, scale, [0.0] * x.shape[1], 0.0)
    weights, bias = fit_logistic(model._standardise(x), y, l2)
    model.weights, model.bias = [float(w) for w in weights], bias
    return model


def _folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Stratified fold index arrays."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == label))
        for n, row in enumerate(rows):
            folds[n % k].append(int(row))
    return [np.array(sorted(f), dtype=int) for f in folds if f]


def fit(x: np.ndarray, y: np.ndarray, *, l2: float = L2, seed: int = 0) -> QualityEstimator:
    """Fit on (N, F) raw features (nan allowed, :data:`FEATURE_NAMES` order) and (N,) failure
    labels (1 = unsatisfactory or rejected). Needs both classes.

    ``metrics``: ``cv_auc`` (ROC AUC of the out-of-fold calibrated probabilities),
    ``cv_brier`` (their Brier score), ``accepted`` and ``failed`` (row counts).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES) or len(x) != len(y):
        raise ValueError(f"expected (N, {len(FEATURE_NAMES)}) features and N labels")
    if y.min() == y.max():
        raise ValueError("the estimator needs both accepted and failed examples")
    k = int(min(FOLDS, y.sum(), (1 - y).sum()))
    oof = np.zeros(len(y))
    if k >= 2:
        for held in _folds(y.astype(int), k, seed):
            train = np.setdiff1d(np.arange(len(y)), held)
            oof[held] = _uncalibrated(x[train], y[train], l2).decision(x[held])
        a_w, a_b = fit_logistic(oof[:, None], y, l2=1e-3)
        calibration = (float(a_w[0]), a_b)
    else:
        calibration = (1.0, 0.0)
    model = _uncalibrated(x, y, l2)
    model.calibration = calibration
    if k >= 2:
        calibrated = _sigmoid(calibration[0] * oof + calibration[1])
        model.metrics["cv_auc"] = roc_auc(calibrated, y)
        model.metrics["cv_brier"] = float(((calibrated - y) ** 2).mean())
    model.metrics["accepted"] = float((1 - y).sum())
    model.metrics["failed"] = float(y.sum())
    return model
