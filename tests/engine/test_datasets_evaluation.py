"""J&F of masklets against ground-truth masklets (engine.metrics.evaluation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.datasets.importing import import_path
from engine.masklets.revisions import FrameMask, do_save_revision
from engine.masks.rle import Rle, encode_rle
from engine.metrics.evaluation import evaluate_pairs, evaluate_projects, evaluate_rle_masklet
from engine.metrics.scores import evaluate_masklet
from engine.models import Masklet

EXAMPLE = Path(__file__).parent / "data" / "sav_example"


def _box(y0: int, x0: int, size: int = 10, hw: tuple[int, int] = (40, 40)) -> np.ndarray:
    mask = np.zeros(hw, dtype=bool)
    mask[y0 : y0 + size, x0 : x0 + size] = True
    return mask


def test_shifted_box_has_the_known_iou_and_identical_masks_score_one() -> None:
    gt = {t: encode_rle(_box(5, 5)) for t in range(4)}
    same = evaluate_rle_masklet(gt, gt, key="a", skip_first_and_last=False)
    assert same.score.j == 1.0
    assert same.score.f == 1.0
    shifted = {t: encode_rle(_box(5, 10)) for t in range(4)}  # 50 of 150 pixels overlap
    result = evaluate_rle_masklet(shifted, gt, key="b", skip_first_and_last=False)
    assert result.score.j == pytest.approx(50 / 150)
    assert set(result.frames) == {0, 1, 2, 3}


def test_missing_predictions_count_as_empty_and_first_last_are_skipped() -> None:
    gt: dict[int, Rle | None] = {t: encode_rle(_box(5, 5)) for t in range(5)}
    gt[2] = None  # object absent on frame 2: an empty prediction is right there
    result = evaluate_rle_masklet({}, gt)
    assert result.score.frame_indices == (1, 2, 3)
    assert result.frames[2].j == 1.0
    assert result.frames[1].j == 0.0
    assert result.score.j == pytest.approx(1 / 3)


def test_agrees_with_metrics_on_decoded_masks() -> None:
    rng = np.random.default_rng(0)
    gt_masks = {t: rng.random((30, 40)) > 0.6 for t in range(6)}
    pred_masks = {t: np.roll(m, 2, axis=1) for t, m in gt_masks.items()}
    ours = evaluate_rle_masklet(
        {t: encode_rle(m) for t, m in pred_masks.items()},
        {t: encode_rle(m) for t, m in gt_masks.items()},
    )
    reference = evaluate_masklet(pred_masks, gt_masks)
    assert ours.score.j == pytest.approx(reference.j, abs=1e-12)
    assert ours.score.f == pytest.approx(reference.f, abs=1e-12)
    report = evaluate_pairs(
        [
            (
                "x",
                {t: encode_rle(m) for t, m in pred_masks.items()},
                {t: encode_rle(m) for t, m in gt_masks.items()},
            )
        ]
    )
    assert report.dataset.j_and_f == pytest.approx(reference.j_and_f)


@pytest.mark.django_db
def test_projects_scored_against_imported_ground_truth(project, manager) -> None:
    from engine.accounts.projects import do_create_project

    truth = do_create_project("SA-V ground truth", manager)
    import_path(truth, EXAMPLE / "sav_000001_manual.json", author=manager)
    import_path(project, EXAMPLE / "sav_000001_manual.json", author=manager)
    perfect = evaluate_projects(project, truth)
    assert perfect.dataset.n_objects == 5
    assert perfect.dataset.j_and_f == pytest.approx(1.0)
    # wipe one predicted masklet on every frame: its J drops to the share of GT-empty frames
    masklet = Masklet.objects.get(video__project=project, object_id=1)
    do_save_revision(
        masklet,
        author=manager,
        base_revision_id=masklet.current_revision_id,
        frames={t: FrameMask(None) for t in range(121)},
    )
    worse = evaluate_projects(project, truth)
    scores = worse.as_dict()["masklets"]
    assert scores["sav_000001#1"]["j"] == pytest.approx(0.0)  # object 1 is visible throughout
    assert scores["sav_000001#0"]["j_and_f"] == pytest.approx(1.0)
    assert worse.dataset.j == pytest.approx(4 / 5)
