"""Quality estimator benchmark: agreement with simulated reviewers and review seconds saved.

Held-out simulated masklets: procedural videos with exact ground truth
(``engine.simulation.procedural.make_videos``; ``--generator own`` or a missing module falls back
to moving ellipses made here), and for every ground-truth object a masklet that is its ground
truth corrupted the way SAM 2 masklets go wrong, at a random severity:

- ``none``: the ground truth itself (good);
- ``drift``: from a random frame on, the mask slides away at a growing offset;
- ``lost``: the object is missing on a random stretch of frames;
- ``jitter``: every frame shifted by a random offset (sigma in pixels);
- ``swap``: from a random frame on, the mask is another object's (an identity switch);
- ``erode`` / ``dilate``: the boundary eaten or grown by a few pixels on every frame;
- ``fragment``: spurious blobs appear on some frames.

A simulated reviewer judges each masklet against the ground truth: accept when J&F (DESIGN 7,
over every frame, empty vs empty = 1) reaches ``--accept-jf``; each verdict is flipped with
probability ``--label-noise`` (reviewers disagree). The estimator (engine.quality) is trained on
the training videos' verdicts and measured on held-out videos: ROC AUC of its failure
probability against the simulated reviewers' verdicts (target >= 0.8), against the noise-free
verdicts, calibration, and single-feature baselines.

Timing model of a review (DESIGN 7: 30 s to watch 300 frames, i.e. 0.1 s per frame, plus a
fixed ``--open-seconds`` per masklet to open it and give the verdict):

- without triage: every masklet is watched through once: ``open + 0.1 * T``;
- with triage:
  * auto-accepted (calibrated acceptance >= ``--threshold``): 0 s, nobody looks;
  * the estimator predicts a failure (failure probability >= 0.5) and marks frames: the
    reviewer jumps to each marked frame and watches ``--window`` frames either side; if the
    ground truth confirms an error there (J < 0.75 on one of those frames) the verdict is given
    from the marks alone: ``open + 0.1 * frames watched``; otherwise the reviewer also watches
    the whole masklet: ``open + 0.1 * (frames watched + T)``;
  * every other masklet: watched through once, as without triage.

Auto-accepted masklets that the noise-free reviewer would have refused are counted
("wrongly auto-accepted"): the price of the saving.

    .venv/bin/python benchmarks/bench_quality.py                   # 100 + 40 videos, 32 frames
    .venv/bin/python benchmarks/bench_quality.py --train-videos 80 --test-videos 80 --seed 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.metrics.scores import evaluate_frame  # noqa: E402
from engine.quality.estimator import fit, roc_auc  # noqa: E402
from engine.quality.features import FEATURE_NAMES, masklet_features  # noqa: E402

CORRUPTIONS = ("none", "drift", "lost", "jitter", "swap", "erode", "dilate", "fragment")
#: Half the masklets are untouched: a review queue holds mostly acceptable work.
WEIGHTS = (0.45, 0.1, 0.1, 0.1, 0.05, 0.07, 0.06, 0.07)
SECONDS_PER_FRAME = 30.0 / 300.0


@dataclass
class Sample:
    kind: str
    severity: float
    frames: int
    jf: float
    frame_j: np.ndarray  # (T,)
    verdict_failed: int  # the simulated reviewer's (noisy) verdict
    truly_failed: int  # the noise-free verdict
    features: np.ndarray  # (F,)
    marks: list[int]


# -- videos --------------------------------------------------------------------------------------


Video = tuple[np.ndarray, np.ndarray | None]  # (O, T, H, W) bool truth, (T, H, W, 3) frames


def own_videos(first_seed: int, count: int, frames: int, size: int) -> list[Video]:
    """Moving, breathing ellipses: (O, T, H, W) bool ground truth per video, no frames."""
    out: list[Video] = []
    yy, xx = np.mgrid[:size, :size]
    for seed in range(first_seed, first_seed + count):
        rng = np.random.default_rng(seed)
        objects = []
        for _ in range(int(rng.integers(2, 4))):
            c = rng.uniform(0.25 * size, 0.75 * size, 2)
            v = rng.uniform(-1.5, 1.5, 2)
            r = rng.uniform(0.08 * size, 0.16 * size, 2)
            phase = rng.uniform(0, 2 * np.pi)
            masks = []
            for t in range(frames):
                cx, cy = c + v * t
                scale = 1 + 0.1 * np.sin(phase + t / 5)
                masks.append(
                    ((xx - cx) / (r[0] * scale)) ** 2 + ((yy - cy) / (r[1] * scale)) ** 2 <= 1
                )
            objects.append(np.stack(masks))
        gt = np.stack(objects)
        for o in range(1, len(gt)):  # later objects occlude earlier ones
            gt[:o] &= ~gt[o]
        out.append((gt, None))
    return out


def procedural_videos(first_seed: int, count: int, frames: int, size: int) -> list[Video]:
    from engine.simulation.procedural import ProceduralSpec, make_videos

    spec = ProceduralSpec(num_frames=frames, height=size, width=size)
    return [(v.masks, v.frames) for v in make_videos(first_seed, count, spec)]


# -- corruptions ---------------------------------------------------------------------------------


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def corrupt(
    gt: np.ndarray, others: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """(T, H, W) ``gt`` corrupted by ``kind`` at a random severity in [0, 1]."""
    t_count, h, w = gt.shape
    pred = gt.copy()
    severity = float(rng.uniform(0.1, 1.0))
    start = int(rng.integers(0, max(1, t_count - 3)))
    if kind == "drift":
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction) + 1e-9
        rate = 0.2 + 1.2 * severity  # pixels per frame
        for t in range(start, t_count):
            dy, dx = np.rint(direction * rate * (t - start)).astype(int)
            pred[t] = _shift(gt[t], int(dy), int(dx))
    elif kind == "lost":
        length = max(1, int(round(severity * 0.4 * t_count)))
        pred[start : start + length] = False
    elif kind == "jitter":
        sigma = 0.5 + 3.5 * severity
        for t in range(t_count):
            dy, dx = np.rint(rng.normal(0, sigma, 2)).astype(int)
            pred[t] = _shift(gt[t], int(dy), int(dx))
    elif kind == "swap" and len(others):
        # An identity switch happens mid-track (from frame 0 it would be another object's
        # perfect masklet: nothing in it could tell).
        start = int(rng.integers(min(3, t_count - 1), max(4, t_count - 2)))
        other = others[int(rng.integers(0, len(others)))]
        pred[start:] = other[start:]
    elif kind in ("erode", "dilate"):
        radius = 1 + int(round(2 * severity))
        op = ndimage.binary_erosion if kind == "erode" else ndimage.binary_dilation
        for t in range(t_count):
            pred[t] = op(gt[t], iterations=radius)
    elif kind == "fragment":
        yy, xx = np.mgrid[:h, :w]
        for t in range(t_count):
            if rng.random() < 0.2 + 0.6 * severity:
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                r = rng.uniform(2, 3 + 6 * severity)
                pred[t] |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    else:
        severity = 0.0
    return pred, severity


# -- simulated review ----------------------------------------------------------------------------


def frame_j_and_f(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, float]:
    scores = [evaluate_frame(p, g) for p, g in zip(pred, gt, strict=True)]
    j = np.array([s.j for s in scores])
    f = np.array([s.f for s in scores])
    return j, float((j.mean() + f.mean()) / 2)


def make_samples(
    videos: list[Video], seed: int, accept_jf: float, label_noise: float, use_images: bool
) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for gt_objects, images in videos:
        frames = dict(enumerate(images)) if images is not None and use_images else None
        for o, gt in enumerate(gt_objects):
            if not gt.any():
                continue
            kind = str(rng.choice(CORRUPTIONS, p=WEIGHTS))
            others = np.delete(gt_objects, o, axis=0)
            pred, severity = corrupt(gt, others, kind, rng)
            frame_j, jf = frame_j_and_f(pred, gt)
            truly = int(jf < accept_jf)
            noisy = truly if rng.random() >= label_noise else 1 - truly
            masks = {t: pred[t] if pred[t].any() else None for t in range(len(pred))}
            measured = masklet_features(masks, images=frames)
            samples.append(
                Sample(
                    kind,
                    severity,
                    len(pred),
                    jf,
                    frame_j,
                    noisy,
                    truly,
                    measured.vector(),
                    measured.marks,
                )
            )
    return samples


# -- review time -----------------------------------------------------------------------------------


def review_seconds(
    samples: list[Sample],
    p_fail: np.ndarray,
    threshold: float | None,
    window: int,
    open_seconds: float,
) -> tuple[float, dict[str, int], int]:
    """Total seconds with triage (``threshold`` None: without), the count of each path, and
    how many auto-accepted masklets the noise-free reviewer would have refused."""
    total = 0.0
    paths = {"auto-accepted": 0, "jumped to marks": 0, "marks then full watch": 0, "full watch": 0}
    wrong = 0
    for s, p in zip(samples, p_fail, strict=True):
        full = open_seconds + SECONDS_PER_FRAME * s.frames
        if threshold is None:
            total += full
            paths["full watch"] += 1
        elif 1 - p >= threshold:
            paths["auto-accepted"] += 1
            wrong += s.truly_failed
        elif p >= 0.5 and s.marks:
            watched: set[int] = set()
            for m in s.marks:
                watched.update(range(max(0, m - window), min(s.frames, m + window + 1)))
            confirmed = any(s.frame_j[t] < 0.75 for t in watched)
            if confirmed:
                total += open_seconds + SECONDS_PER_FRAME * len(watched)
                paths["jumped to marks"] += 1
            else:
                total += full + SECONDS_PER_FRAME * len(watched)
                paths["marks then full watch"] += 1
        else:
            total += full
            paths["full watch"] += 1
    return total, paths, wrong


def calibration_table(
    p: np.ndarray, y: np.ndarray, bins: int = 5
) -> list[tuple[str, int, float, float]]:
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if inside.any():
            rows.append(
                (
                    f"{lo:.1f}-{hi:.1f}",
                    int(inside.sum()),
                    float(p[inside].mean()),
                    float(y[inside].mean()),
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-videos", type=int, default=100)
    parser.add_argument("--test-videos", type=int, default=40)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accept-jf", type=float, default=0.8)
    parser.add_argument("--label-noise", type=float, default=0.05)
    parser.add_argument("--threshold", type=float, default=0.9, help="auto-accept threshold")
    parser.add_argument(
        "--window", type=int, default=3, help="frames watched either side of a mark"
    )
    parser.add_argument("--open-seconds", type=float, default=5.0, help="fixed cost per masklet")
    parser.add_argument("--generator", choices=("procedural", "own"), default="procedural")
    parser.add_argument(
        "--masks-only", action="store_true", help="no frames: without the edge-alignment features"
    )
    args = parser.parse_args()

    make: Callable[[int, int, int, int], list[Video]] = own_videos
    generator = "own moving ellipses"
    if args.generator == "procedural":
        try:
            make, generator = procedural_videos, "engine.simulation.procedural"
            make(0, 1, 8, 64)
        except ImportError:
            make, generator = own_videos, "own moving ellipses (procedural module missing)"
    started = time.perf_counter()
    train_videos = make(10_000 + 1000 * args.seed, args.train_videos, args.frames, args.size)
    test_videos = make(20_000 + 1000 * args.seed, args.test_videos, args.frames, args.size)
    use_images = not args.masks_only
    train = make_samples(train_videos, args.seed, args.accept_jf, args.label_noise, use_images)
    test = make_samples(test_videos, args.seed + 1, args.accept_jf, args.label_noise, use_images)
    built = time.perf_counter() - started

    x_train = np.stack([s.features for s in train])
    y_train = np.array([s.verdict_failed for s in train], dtype=float)
    started = time.perf_counter()
    model = fit(x_train, y_train)
    fitted = time.perf_counter() - started
    x_test = np.stack([s.features for s in test])
    y_test = np.array([s.verdict_failed for s in test])
    y_true = np.array([s.truly_failed for s in test])
    p = model.failure_probability(x_test)

    def column(name: str) -> np.ndarray:
        return x_test[:, FEATURE_NAMES.index(name)]

    print(
        f"videos: {generator}, {args.frames} frames of {args.size}x{args.size}; features from "
        + ("masks and frames" if use_images else "masks only")
    )
    print(
        f"masklets: train {len(train)} ({int(y_train.sum())} refused), "
        f"test {len(test)} ({int(y_test.sum())} refused); reviewer accepts at J&F >= "
        f"{args.accept_jf}, label noise {args.label_noise:.0%}; built in {built:.1f} s, "
        f"fitted in {fitted * 1000:.0f} ms"
    )
    print(
        "corruptions in the test set:",
        ", ".join(f"{k} {sum(s.kind == k for s in test)}" for k in CORRUPTIONS),
    )
    print()
    print(f"ROC AUC vs simulated reviewers' verdicts: {roc_auc(p, y_test):.3f}  (target >= 0.8)")
    print(f"ROC AUC vs noise-free verdicts:          {roc_auc(p, y_true):.3f}")
    print(
        f"cross-validated AUC on the training set: {model.metrics.get('cv_auc', float('nan')):.3f}"
    )
    print(f"Brier score (test, noisy verdicts):      {float(((p - y_test) ** 2).mean()):.3f}")
    print(
        "single-feature baselines (AUC, test):   "
        + ", ".join(
            f"{name} {roc_auc(sign * np.nan_to_num(column(name), nan=0.0), y_test):.3f}"
            for name, sign in (
                ("iou_min", -1),
                ("jitter", 1),
                ("suspicion_max", 1),
                ("area_change_max", 1),
            )
        )
    )
    print("per corruption (test): kind | masklets | refused (noise-free) | mean p(fail)")
    for kind in CORRUPTIONS:
        rows = [i for i, s in enumerate(test) if s.kind == kind]
        if rows:
            print(
                f"  {kind:8s} | {len(rows):3d} | {y_true[rows].mean():.2f} | {p[rows].mean():.2f}"
            )
    print()
    print("calibration (test): bin | masklets | mean predicted p(fail) | observed refusal rate")
    for label, n, pred_mean, observed in calibration_table(p, y_test):
        print(f"  {label} | {n:4d} | {pred_mean:.2f} | {observed:.2f}")
    print()
    plain, _, _ = review_seconds(test, p, None, args.window, args.open_seconds)
    triaged, paths, wrong = review_seconds(test, p, args.threshold, args.window, args.open_seconds)
    n = len(test)
    print(
        f"review time model: {args.open_seconds:g} s per masklet + {SECONDS_PER_FRAME:g} s per "
        f"frame watched; auto-accept at p(accept) >= {args.threshold}; "
        f"marks watched +-{args.window} frames"
    )
    print(f"  without triage: {plain / n:6.2f} s per masklet ({plain:.0f} s for {n})")
    print(
        f"  with triage:    {triaged / n:6.2f} s per masklet ({triaged:.0f} s for {n}), "
        f"{1 - triaged / plain:.0%} saved"
    )
    print("  paths: " + ", ".join(f"{k} {v}" for k, v in paths.items()))
    accepted = paths["auto-accepted"]
    print(
        f"  wrongly auto-accepted (noise-free reviewer would refuse): {wrong} of {accepted}"
        + (f" ({wrong / accepted:.1%})" if accepted else "")
    )
    print(
        "  auto-accept threshold sweep: threshold | s per masklet | saved | auto-accepted |"
        " wrongly auto-accepted"
    )
    for threshold in (0.95, 0.9, 0.85, 0.8, 0.7):
        seconds, swept, wrong_at = review_seconds(
            test, p, threshold, args.window, args.open_seconds
        )
        auto = swept["auto-accepted"]
        print(
            f"    {threshold:.2f} | {seconds / n:5.2f} | {1 - seconds / plain:4.0%} | {auto:3d} | "
            f"{wrong_at}" + (f" ({wrong_at / auto:.0%})" if auto else "")
        )
    order = np.argsort(-p, kind="stable")
    top = order[: max(1, n // 4)]
    print(
        f"  queue order: refusals in the first quarter {int(y_test[top].sum())} of "
        f"{int(y_test.sum())} (plain order expects {y_test.mean() * len(top):.1f})"
    )


if __name__ == "__main__":
    main()
