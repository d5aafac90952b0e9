"""The model evaluation protocol: clicks through a video session, propagation, J&F."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.simulation.procedural import ProceduralSpec, make_video
from engine.simulation.protocol import (
    EvalConfig,
    ModelScores,
    VideoScores,
    evaluate_model,
    paired_difference,
    score_object,
)
from model.build import build_sam2
from model.sam2_base import Sam2Model

FAST = EvalConfig(click_counts=(1, 2), max_clicks=3)
SPEC = ProceduralSpec(num_frames=6, num_objects=2, reappear=False)


@pytest.fixture(scope="module")
def tiny_model() -> Sam2Model:
    torch.manual_seed(0)
    return build_sam2("test_tiny")


def _video(seed: int) -> tuple[np.ndarray, np.ndarray]:
    video = make_video(seed, SPEC)
    return video.frames, video.masks


# -- scoring ----------------------------------------------------------------------------------


def _gt() -> np.ndarray:
    gt = np.zeros((5, 32, 32), dtype=bool)
    for t in range(5):
        gt[t, 8 + t : 20 + t, 6:18] = True
    gt[3] = False  # hidden on frame 3
    return gt


def test_a_prediction_equal_to_the_ground_truth_scores_one() -> None:
    gt = _gt()
    assert score_object({t: gt[t] for t in range(5)}, gt, prompt_frame=0) == 1.0


def test_the_prompt_frame_is_not_scored() -> None:
    gt = _gt()
    pred = {t: gt[t] for t in range(5)}
    pred[1] = ~gt[1]  # wrong on the prompt frame only
    assert score_object(pred, gt, prompt_frame=1) == 1.0
    assert score_object(pred, gt, prompt_frame=0) < 1.0


def test_missing_frames_are_empty_masks() -> None:
    gt = _gt()
    pred = {t: gt[t] for t in (0, 1, 2, 4)}  # no prediction for the hidden frame: right
    assert score_object(pred, gt, prompt_frame=0) == 1.0
    del pred[4]
    assert score_object(pred, gt, prompt_frame=0) == pytest.approx(0.75)


def test_skip_last_frame() -> None:
    gt = _gt()
    pred = {t: gt[t] for t in range(4)}  # last frame missed
    assert score_object(pred, gt, 0, skip_last_frame=True) == 1.0
    with pytest.raises(ValueError, match="no frame left"):
        score_object(pred, gt, 3, skip_last_frame=True)


# -- the whole protocol on a random tiny model ------------------------------------------------


def test_evaluate_model_returns_bounded_scores(tiny_model: Sam2Model) -> None:
    progress: list[float] = []
    scores = evaluate_model(tiny_model, [_video(0), _video(1)], FAST, on_progress=progress.append)
    assert progress == [0.5, 1.0]
    assert [v.video_index for v in scores.per_video] == [0, 1]
    for video in scores.per_video:
        assert video.num_objects == 2
        assert set(video.jf_after_clicks) == {1, 2}
        values = [*video.jf_after_clicks.values(), video.jf_from_mask]
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
        assert 1 <= video.clicks_to_target <= FAST.max_clicks + 1
    summary = scores.summary()
    assert set(summary) == {"jf_1", "jf_2", "clicks_to_075", "jf_mask"}
    assert summary["jf_1"] == pytest.approx(
        np.mean([v.jf_after_clicks[1] for v in scores.per_video])
    )
    assert all(isinstance(v, float) for v in summary.values())


def test_evaluation_is_deterministic_and_leaves_the_model_as_it_was(tiny_model: Sam2Model) -> None:
    tiny_model.train()
    decoder = tiny_model.sam_mask_decoder
    flags = (decoder.dynamic_multimask_via_stability, tiny_model.binarize_mask_from_pts_for_mem_enc)
    first = evaluate_model(tiny_model, [_video(2)], FAST)
    second = evaluate_model(tiny_model, [_video(2)], FAST)
    assert first.summary() == second.summary()
    assert tiny_model.training
    assert (
        decoder.dynamic_multimask_via_stability,
        tiny_model.binarize_mask_from_pts_for_mem_enc,
    ) == flags
    tiny_model.eval()


def test_objects_sharing_a_session_score_as_alone(tiny_model: Sam2Model) -> None:
    frames, masks = _video(3)
    together = evaluate_model(tiny_model, [(frames, masks)], FAST).per_video[0]
    # each object alone, and each prompt state propagated on its own (no batching)
    unbatched = replace(FAST, max_batch_objects=1)
    alone = [evaluate_model(tiny_model, [(frames, masks[o : o + 1])], unbatched) for o in range(2)]
    for k in FAST.click_counts:
        mean_alone = np.mean([a.jf_after_clicks[k] for a in alone])
        assert together.jf_after_clicks[k] == pytest.approx(mean_alone, abs=1e-6)
    assert together.jf_from_mask == pytest.approx(
        np.mean([a.jf_from_mask for a in alone]), abs=1e-6
    )
    assert together.clicks_to_target == np.mean([a.clicks_to_target for a in alone])


def test_an_object_is_prompted_on_its_first_visible_frame(tiny_model: Sam2Model) -> None:
    frames, masks = _video(4)
    late = masks.copy()
    late[1, :2] = False  # object 1 appears on frame 2
    late[0] = False  # object 0 never appears: left out
    scores = evaluate_model(tiny_model, [(frames, late)], FAST)
    assert scores.per_video[0].num_objects == 1


def test_videos_without_objects_are_left_out(tiny_model: Sam2Model) -> None:
    frames, masks = _video(4)
    last_only = np.zeros_like(masks)
    last_only[:, -1] = masks[:, -1]  # nothing left to score after the prompt frame
    scores = evaluate_model(tiny_model, [(frames, last_only), (frames, masks[:1])], FAST)
    assert [v.video_index for v in scores.per_video] == [1]
    with pytest.raises(ValueError, match="no object"):
        evaluate_model(tiny_model, [(frames, np.zeros_like(masks))], FAST)
    with pytest.raises(ValueError, match="masks must be"):
        evaluate_model(tiny_model, [(frames, masks[:, :3])], FAST)
    with pytest.raises(ValueError, match="no videos"):
        evaluate_model(tiny_model, [], FAST)


# -- comparing two models ---------------------------------------------------------------------


def _scores(jf3: list[float]) -> ModelScores:
    videos = [VideoScores({3: v}, clicks_to_target=2.0, jf_from_mask=v) for v in jf3]
    return ModelScores(videos, {3: float(np.mean(jf3))}, 2.0, float(np.mean(jf3)))


def test_paired_difference_mean_and_standard_error() -> None:
    candidate, baseline = _scores([0.6, 0.7, 0.9]), _scores([0.5, 0.5, 0.6])
    diff, se = paired_difference(candidate, baseline, "jf_3")
    diffs = np.array([0.1, 0.2, 0.3])
    assert diff == pytest.approx(0.2)
    assert se == pytest.approx(diffs.std(ddof=1) / math.sqrt(3))
    assert paired_difference(candidate, baseline, "clicks_to_075") == (0.0, 0.0)
    assert paired_difference(candidate, baseline, "jf_mask")[0] == pytest.approx(0.2)


def test_paired_difference_refuses_unpaired_scores() -> None:
    with pytest.raises(ValueError, match="video counts"):
        paired_difference(_scores([0.5, 0.6]), _scores([0.5]))
    with pytest.raises(ValueError, match="unknown metric"):
        paired_difference(_scores([0.5]), _scores([0.5]), "jf_9")
    assert paired_difference(_scores([0.6]), _scores([0.5]))[1] == math.inf


def test_eval_config() -> None:
    assert EvalConfig().clicks_key == "clicks_to_075"
    assert EvalConfig(iou_target=0.9).clicks_key == "clicks_to_090"
    with pytest.raises(ValueError):
        EvalConfig(click_counts=())
    with pytest.raises(ValueError):
        EvalConfig(iou_target=1.5)
    with pytest.raises(ValueError):
        EvalConfig(dtype="float16")
