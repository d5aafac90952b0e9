"""Our Sam2Model against Meta's SAM2Base: state_dict layout for all four sizes, and numerics
(hiera_t, random weights, 256 px) through a whole batched tracking sequence."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from model.build import build_sam2
from model.config import get_config
from model.sam2_base import Sam2Model
from tests.model.conftest import PARITY_IMAGE_SIZE, build_official, official_on_meta_device

pytestmark = pytest.mark.official

# Parameter totals measured on the official models (shared/reference/sam2.md section 1.4).
OFFICIAL_PARAM_COUNTS = {
    "sam2.1_hiera_t": 38_962_498,
    "sam2.1_hiera_s": 46_060_354,
    "sam2.1_hiera_b+": 80_850_178,
    "sam2.1_hiera_l": 224_446_642,
}


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


@pytest.mark.parametrize("name", list(OFFICIAL_PARAM_COUNTS))
def test_state_dict_keys_and_shapes_equal_official(name: str) -> None:
    pytest.importorskip("sam2")
    with official_on_meta_device():
        official = build_official(name, device="meta")
        ours = Sam2Model(get_config(name))
    ours_shapes, official_shapes = _shapes(ours), _shapes(official)
    assert list(ours_shapes) == list(official_shapes)  # same keys, same order
    assert ours_shapes == official_shapes
    assert sum(p.numel() for p in ours.parameters()) == OFFICIAL_PARAM_COUNTS[name]
    # RoPE tables and sine encodings stay out of the state_dict, as in the checkpoints
    assert not any("freqs" in key or "cache" in key for key in ours_shapes)


def test_build_settings_equal_official_video_builder() -> None:
    """apply_postprocessing True/False = the official video builder's model settings."""
    for post in (True, False):
        with official_on_meta_device():
            official = build_official(
                "sam2.1_hiera_t", video=True, apply_postprocessing=post, device="meta"
            )
        ours = build_sam2("sam2.1_hiera_t", apply_postprocessing=post, device="meta")
        decoder_o, decoder_m = official.sam_mask_decoder, ours.sam_mask_decoder
        for attr in (
            "dynamic_multimask_via_stability",
            "dynamic_multimask_stability_delta",
            "dynamic_multimask_stability_thresh",
        ):
            assert getattr(decoder_m, attr) == getattr(decoder_o, attr), attr
        for attr in (
            "binarize_mask_from_pts_for_mem_enc",
            "image_size",
            "num_maskmem",
            "num_feature_levels",
            "hidden_dim",
            "mem_dim",
            "max_obj_ptrs_in_encoder",
            "non_overlap_masks_for_mem_enc",
            "use_mask_input_as_output_without_sam",
            "multimask_output_in_sam",
            "multimask_output_for_tracking",
            "multimask_min_pt_num",
            "multimask_max_pt_num",
            "sigmoid_scale_for_mem_enc",
            "sigmoid_bias_for_mem_enc",
            "directly_add_no_mem_embed",
            "use_obj_ptrs_in_encoder",
            "only_obj_ptrs_in_the_past_for_eval",
            "use_signed_tpos_enc_to_obj_ptrs",
            "fixed_no_obj_ptr",
            "soft_no_obj_ptr",
            "pred_obj_scores",
            "memory_temporal_stride_for_eval",
            "max_cond_frames_in_attn",
            "add_all_frames_to_correct_as_cond",
            "sam_image_embedding_size",
            "sam_prompt_embed_dim",
            "backbone_stride",
        ):
            assert getattr(ours, attr) == getattr(official, attr), attr
        assert ours.binarize_mask_from_pts_for_mem_enc is post
        assert not ours.training


# ---------------------------------------------------------------------------- numerics


OUR_EXTRA_OUTPUTS = {"iou_predictions"}


def assert_close(ours: Any, official: Any, where: str) -> None:
    """Recursively compare tensors (fp32) in nested dicts/lists/tuples."""
    if isinstance(official, torch.Tensor):
        assert isinstance(ours, torch.Tensor), where
        assert ours.shape == official.shape, f"{where}: {ours.shape} vs {official.shape}"
        assert ours.dtype == official.dtype, where
        scale = max(1.0, official.float().abs().max().item())
        diff = (ours.float() - official.float()).abs().max().item() if ours.numel() else 0.0
        assert diff <= 1e-4 * scale, f"{where}: max abs diff {diff} (scale {scale})"
    elif isinstance(official, dict):
        # our track_step also returns the decoder's predicted IoUs (memory selection reads them)
        assert set(ours) - set(official) <= OUR_EXTRA_OUTPUTS, where
        assert set(official) <= set(ours), where
        for key in official:
            assert_close(ours[key], official[key], f"{where}.{key}")
    elif isinstance(official, list | tuple):
        assert len(ours) == len(official), where
        for i, (a, b) in enumerate(zip(ours, official)):
            assert_close(a, b, f"{where}[{i}]")
    else:
        assert ours == official, where


def _frame_features(model: Any, image: torch.Tensor, batch: int) -> tuple[Any, ...]:
    """As the official legacy predictor: one backbone pass, features expanded to B objects."""
    backbone_out = model.forward_image(image)
    expanded = {
        "backbone_fpn": [x.expand(batch, -1, -1, -1) for x in backbone_out["backbone_fpn"]],
        "vision_pos_enc": [x.expand(batch, -1, -1, -1) for x in backbone_out["vision_pos_enc"]],
    }
    _, feats, pos, sizes = model._prepare_backbone_features(expanded)
    return backbone_out, feats, pos, sizes


def _drive(model: Any, frames: torch.Tensor, prompts: dict[str, Any]) -> list[dict[str, Any]]:
    """A batched (B=2) tracking session exercising every path of track_step."""
    batch = 2
    num_frames = frames.shape[0]
    output_dict: dict[str, dict[int, Any]] = {
        "cond_frame_outputs": {},
        "non_cond_frame_outputs": {},
    }
    results: list[dict[str, Any]] = []
    features = [_frame_features(model, frames[t : t + 1], batch) for t in range(num_frames)]

    def step(t: int, **kwargs: Any) -> dict[str, Any]:
        _, feats, pos, sizes = features[t]
        defaults: dict[str, Any] = {
            "is_init_cond_frame": False,
            "point_inputs": None,
            "mask_inputs": None,
            "track_in_reverse": False,
            "run_mem_encoder": True,
            "prev_sam_mask_logits": None,
        }
        defaults.update(kwargs)
        return model.track_step(
            frame_idx=t,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=sizes,
            output_dict=output_dict,
            num_frames=num_frames,
            **defaults,
        )

    # frame 0: one click per object on an initial conditioning frame (3 masks, best kept)
    out = step(0, is_init_cond_frame=True, point_inputs=prompts["click"])
    output_dict["cond_frame_outputs"][0] = out
    results.append(out)
    # frames 1-4: plain tracking with memories and object pointers
    for t in range(1, 5):
        out = step(t)
        output_dict["non_cond_frame_outputs"][t] = out
        results.append(out)
    # frame 3: a 2-click correction fed with the previous logits, memory deferred
    correction = step(
        3,
        point_inputs=prompts["two_clicks"],
        prev_sam_mask_logits=output_dict["non_cond_frame_outputs"][3]["pred_masks"],
        run_mem_encoder=False,
    )
    results.append(correction)
    # frame 6: a mask prompt on a fresh frame (mask used as output, pointer from the decoder)
    out = step(6, is_init_cond_frame=True, mask_inputs=prompts["mask"])
    output_dict["cond_frame_outputs"][6] = out
    results.append(out)
    # frame 5, tracked in reverse from frame 6, memories from both sides
    results.append(step(5, track_in_reverse=True))
    # direct head calls: points + mask prompt, multimask on and off
    _, feats, _, sizes = features[2]
    pix = feats[-1].permute(1, 2, 0).reshape(batch, -1, *sizes[-1])
    high_res = [x.permute(1, 2, 0).reshape(batch, -1, *s) for x, s in zip(feats[:-1], sizes[:-1])]
    for multimask in (True, False):
        heads = model._forward_sam_heads(
            pix,
            point_inputs=prompts["two_clicks"],
            mask_inputs=prompts["low_res_logits"],
            high_res_features=high_res,
            multimask_output=multimask,
        )
        results.append({"heads": list(heads)})
    memory = model._encode_new_memory(
        feats, sizes, prompts["high_res_logits"], prompts["object_scores"], True
    )
    results.append({"memory": list(memory)})
    results.append(
        {"non_overlap": model._apply_non_overlapping_constraints(prompts["high_res_logits"])}
    )
    return results


def _prompts(size: int) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(7)
    mask = torch.zeros(2, 1, size, size, dtype=torch.bool)
    mask[0, :, size // 4 : size // 2, size // 4 : size // 2] = True  # object 1's mask is empty
    return {
        "click": {
            "point_coords": torch.tensor([[[100.0, 120.0]], [[30.0, 200.0]]]),
            "point_labels": torch.tensor([[1], [1]], dtype=torch.int32),
        },
        "two_clicks": {
            "point_coords": torch.tensor(
                [[[100.0, 120.0], [10.0, 12.0]], [[30.0, 200.0], [90.0, 9.0]]]
            ),
            "point_labels": torch.tensor([[1, 0], [1, 1]], dtype=torch.int32),
        },
        "mask": mask,
        "low_res_logits": torch.randn(2, 1, size // 4, size // 4, generator=generator) * 5,
        "high_res_logits": torch.randn(2, 1, size, size, generator=generator) * 5,
        "object_scores": torch.tensor([[1.5], [-2.0]]),
    }


def test_numerics_equal_official_through_a_tracking_session(
    official_pair: tuple[Any, Sam2Model],
) -> None:
    official, ours = official_pair
    frames = torch.randn(
        7, 3, PARITY_IMAGE_SIZE, PARITY_IMAGE_SIZE, generator=torch.Generator().manual_seed(3)
    )
    prompts = _prompts(PARITY_IMAGE_SIZE)
    with torch.inference_mode():
        backbone_official = official.forward_image(frames[:2])
        backbone_ours = ours.forward_image(frames[:2])
        assert_close(backbone_ours, backbone_official, "forward_image")
        official_results = _drive(official, frames, prompts)
        ours_results = _drive(ours, frames, prompts)
    assert len(ours_results) == len(official_results)
    for i, (mine, theirs) in enumerate(zip(ours_results, official_results)):
        assert_close(mine, theirs, f"step {i}")
    # the session really exercised the mask path: objects present, masks not constant
    for out in ours_results[:5]:
        assert (out["object_score_logits"] > 0).all()
        assert out["pred_masks"].std() > 0
    assert not torch.allclose(ours_results[1]["pred_masks"], ours_results[2]["pred_masks"])
    assert ours_results[-4]["heads"][0].shape[1] == 3  # multimask output
    assert ours_results[-3]["heads"][0].shape[1] == 1
