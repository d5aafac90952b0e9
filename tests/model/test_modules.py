"""Shapes, NaN-freedom and behaviour of each module on the tiny config (128 px)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import torch

from model.build import build_sam2
from model.config import CONFIGS, HieraConfig, Sam2Config, get_config
from model.hiera import Hiera, window_partition, window_unpartition
from model.image_encoder import FpnNeck
from model.memory_attention import MemoryAttention
from model.memory_encoder import MemoryEncoder
from model.position_encoding import (
    PositionEmbeddingRandom,
    PositionEmbeddingSine,
    apply_rope,
    axial_rope_table,
    get_1d_sine_pe,
)
from model.prompt_encoder import PromptEncoder
from model.sam2_base import NO_OBJ_SCORE, Sam2Model, select_closest_cond_frames
from model.transformer import RoPEAttention, TwoWayTransformer
from tests.model.conftest import force_object_presence

S = 128  # tiny config image size


def finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


# ----------------------------------------------------------------------------- config


def test_official_configs_match_the_yaml_values() -> None:
    t = CONFIGS["sam2.1_hiera_t"].trunk
    assert t.stage_ends == (0, 2, 9, 11)
    assert t.backbone_channel_list == (768, 384, 192, 96)
    assert CONFIGS["sam2.1_hiera_s"].trunk.stage_ends == (0, 2, 13, 15)
    assert CONFIGS["sam2.1_hiera_b+"].trunk.backbone_channel_list == (896, 448, 224, 112)
    large = CONFIGS["sam2.1_hiera_l"].trunk
    assert large.stage_ends == (1, 7, 43, 47)
    assert large.window_spec == (8, 4, 16, 8)
    assert large.backbone_channel_list == (1152, 576, 288, 144)
    for name in ("sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"):
        config = CONFIGS[name]
        assert config.image_size == 1024
        assert config.num_maskmem == 7
        assert config.no_obj_embed_spatial
        assert config.proj_tpos_enc_in_obj_ptrs
        assert not config.binarize_mask_from_pts_for_mem_enc  # YAML value; builder adds it


def test_hiera_window_lag_matches_the_reference_table() -> None:
    trunk = Hiera(CONFIGS["sam2.1_hiera_t"].trunk).to("meta")
    windows = [block.window_size for block in trunk.blocks]
    assert windows == [8, 8, 4, 4, 14, 0, 14, 0, 14, 0, 14, 7]
    assert trunk.q_pool_blocks == [1, 3, 10]
    assert [block.dim_out for block in trunk.blocks][:3] == [96, 192, 192]


@pytest.mark.parametrize("size", [64, 100, 129, 1000, 0, -32])
def test_get_config_rejects_bad_image_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 32 and at least 128"):
        get_config("sam2.1_hiera_t", image_size=size)


def test_get_config_image_size_and_unknown_names() -> None:
    config = get_config("sam2.1_hiera_t", image_size=512)
    assert config.image_size == 512
    assert config.image_embedding_size == 32
    assert config.trunk == CONFIGS["sam2.1_hiera_t"].trunk
    assert get_config("sam2.1_hiera_t") is CONFIGS["sam2.1_hiera_t"]
    with pytest.raises(ValueError, match="known configs: .*sam2.1_hiera_b\\+.*sam2.1_hiera_t"):
        get_config("sam2_hiera_tiny")
    with pytest.raises(ValueError, match="multiple of 32"):
        Sam2Config(name="x", image_size=200)
    with pytest.raises(ValueError, match="same length"):
        HieraConfig(stages=(1, 1), window_spec=(8, 4, 14, 7))


def test_build_sam2_by_name_is_eval_and_applies_postprocessing() -> None:
    model = build_sam2("test_tiny")
    assert isinstance(model, Sam2Model)
    assert not model.training
    assert model.binarize_mask_from_pts_for_mem_enc
    assert model.sam_mask_decoder.dynamic_multimask_via_stability
    plain = build_sam2("test_tiny", apply_postprocessing=False)
    assert not plain.binarize_mask_from_pts_for_mem_enc
    assert not plain.sam_mask_decoder.dynamic_multimask_via_stability
    with pytest.raises(NotImplementedError):
        model(torch.zeros(1))


# ----------------------------------------------------------------------------- encodings


def test_sine_encoding_shape_range_and_cache() -> None:
    pe = PositionEmbeddingSine(64)
    out = pe(torch.zeros(2, 5, 8, 12))
    assert out.shape == (2, 64, 8, 12)
    assert out.dtype == torch.float32
    assert finite(out)
    assert out.abs().max() <= 1.0
    # first half encodes y only: constant along x
    assert torch.allclose(out[:, :32, :, 0], out[:, :32, :, 7])
    assert not torch.allclose(out[:, 32:, :, 0], out[:, 32:, :, 7])
    assert not list(pe.state_dict())  # no table in the state_dict
    # the cached table is shared (expanded over the batch, never copied per call)
    again = pe(torch.zeros(3, 1, 8, 12))
    assert again.shape == (3, 64, 8, 12)
    assert again.stride(0) == 0
    assert again.data_ptr() == out.data_ptr()
    half = pe(torch.zeros(1, 1, 8, 12), dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), out[:1], atol=1e-2)


def test_random_encoding_buffer_and_shapes() -> None:
    pe = PositionEmbeddingRandom(128)
    assert list(pe.state_dict()) == ["positional_encoding_gaussian_matrix"]
    assert pe((4, 6)).shape == (256, 4, 6)
    coords = torch.tensor([[[0.0, 0.0], [64.0, 32.0]]])
    assert pe.forward_with_coords(coords, (64, 128)).shape == (1, 2, 256)


def test_rope_rotation_preserves_norms_and_repeats_over_memories() -> None:
    table = axial_rope_table(head_dim=16, width=4, height=4)
    assert table.shape == (16, 8)
    assert table.dtype == torch.complex64
    x = torch.randn(2, 1, 16, 16)
    rotated = apply_rope(x, table)
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.allclose(rotated[:, :, 0], x[:, :, 0])  # position (0, 0) is not rotated
    two_frames = apply_rope(torch.cat([x, x], dim=2), table)
    assert torch.allclose(two_frames[:, :, 16:], rotated)
    with pytest.raises(ValueError, match="multiple"):
        apply_rope(torch.randn(1, 1, 20, 16), table)


def test_rope_attention_needs_a_square_grid_and_excludes_pointer_tokens() -> None:
    attn = RoPEAttention(32, 1, kv_in_dim=8, rope_k_repeat=True).eval()
    q = torch.randn(2, 16, 32)
    memory = torch.randn(2, 2 * 16 + 4, 8)
    out = attn(q, memory, memory, num_k_exclude_rope=4)
    assert out.shape == (2, 16, 32)
    assert finite(out)
    with pytest.raises(ValueError, match="square"):
        attn(torch.randn(1, 15, 32), memory[:1, :30], memory[:1, :30])
    assert not [k for k in attn.state_dict() if "freqs" in k]


def test_1d_sine_pe() -> None:
    pe = get_1d_sine_pe(torch.tensor([0.0, 0.5, 1.0]), dim=8)
    assert pe.shape == (3, 8)
    assert torch.equal(pe[0], torch.tensor([0.0] * 4 + [1.0] * 4))


# ----------------------------------------------------------------------------- modules


def test_window_partition_round_trip_with_padding() -> None:
    x = torch.randn(2, 10, 13, 3)
    windows, padded = window_partition(x, 4)
    assert padded == (12, 16)
    assert windows.shape == (2 * 3 * 4, 4, 4, 3)
    assert torch.equal(window_unpartition(windows, 4, padded, (10, 13)), x)


def test_hiera_and_image_encoder_shapes(tiny_model: Sam2Model) -> None:
    image = torch.randn(2, 3, S, S)
    with torch.inference_mode():
        stages = tiny_model.image_encoder.trunk(image)
        assert [tuple(s.shape) for s in stages] == [
            (2, 16, 32, 32),
            (2, 32, 16, 16),
            (2, 64, 8, 8),
            (2, 128, 4, 4),
        ]
        out = tiny_model.forward_image(image)
    assert [tuple(x.shape) for x in out["backbone_fpn"]] == [
        (2, 32, 32, 32),  # after conv_s0
        (2, 64, 16, 16),  # after conv_s1
        (2, 256, 8, 8),
    ]
    assert [tuple(x.shape) for x in out["vision_pos_enc"]] == [
        (2, 256, 32, 32),
        (2, 256, 16, 16),
        (2, 256, 8, 8),
    ]
    assert out["vision_features"] is out["backbone_fpn"][-1]
    assert finite(*out["backbone_fpn"], *out["vision_pos_enc"])


def test_fpn_neck_top_down_only_on_listed_levels() -> None:
    neck = FpnNeck(8, [16, 8, 4, 2], fpn_top_down_levels=[2, 3]).eval()
    xs = [torch.randn(1, c, s, s) for c, s in zip([2, 4, 8, 16], [16, 8, 4, 2])]
    features, pos = neck(xs)
    assert [f.shape[-1] for f in features] == [16, 8, 4, 2]
    lateral_only = neck.convs[3](xs[0])
    assert torch.equal(features[0], lateral_only)  # level 0 is lateral only
    assert not torch.equal(features[2], neck.convs[1](xs[2]))  # level 2 gets top-down


def test_prompt_encoder_points_boxes_masks() -> None:
    enc = PromptEncoder(32, (8, 8), (128, 128), mask_in_chans=16).eval()
    points = torch.tensor([[[10.0, 20.0], [50.0, 60.0]]]).repeat(3, 1, 1)
    labels = torch.tensor([[1, 0]], dtype=torch.int32).repeat(3, 1)
    sparse, dense = enc((points, labels), None, None)
    assert sparse.shape == (3, 3, 32)  # 2 points + padding point
    assert dense.shape == (3, 32, 8, 8)
    assert torch.equal(sparse[:, 2], enc.not_a_point_embed.weight.expand(3, -1))
    sparse, dense = enc(None, torch.tensor([[0.0, 0.0, 64.0, 64.0]]), torch.randn(1, 1, 32, 32))
    assert sparse.shape == (1, 2, 32)
    assert dense.shape == (1, 32, 8, 8)
    assert enc.get_dense_pe().shape == (1, 32, 8, 8)
    # a positive and a negative click at the same place embed differently
    a, _ = enc((points[:1, :1], torch.tensor([[1]])), None, None)
    b, _ = enc((points[:1, :1], torch.tensor([[0]])), None, None)
    assert not torch.allclose(a[:, 0], b[:, 0])


def test_two_way_transformer_shapes() -> None:
    transformer = TwoWayTransformer(depth=2, embedding_dim=32, num_heads=4, mlp_dim=64).eval()
    queries, keys = transformer(
        torch.randn(2, 32, 4, 4), torch.randn(2, 32, 4, 4), torch.randn(2, 5, 32)
    )
    assert queries.shape == (2, 5, 32)
    assert keys.shape == (2, 16, 32)
    assert finite(queries, keys)


def test_mask_decoder_outputs(tiny_model: Sam2Model) -> None:
    decoder = tiny_model.sam_mask_decoder
    enc = tiny_model.sam_prompt_encoder
    sparse, dense = enc((torch.rand(2, 1, 2) * S, torch.ones(2, 1, dtype=torch.int32)), None, None)
    high_res = [torch.randn(2, 32, 32, 32), torch.randn(2, 64, 16, 16)]
    with torch.inference_mode():
        for multimask, m in ((True, 3), (False, 1)):
            masks, iou, tokens, score = decoder(
                torch.randn(2, 256, 8, 8),
                enc.get_dense_pe(),
                sparse,
                dense,
                multimask,
                False,
                high_res,
            )
            assert masks.shape == (2, m, 32, 32)
            assert iou.shape == (2, m)
            assert tokens.shape == (2, m, 256)
            assert score.shape == (2, 1)
            assert finite(masks, iou, tokens, score)
            assert ((iou >= 0) & (iou <= 1)).all()  # sigmoid IoU head


def test_mask_decoder_inference_path_equals_the_training_path(tiny_model: Sam2Model) -> None:
    """Without autograd the decoder reuses the cached positional encoding and upscales in
    place over channels-last pixels; with it, it runs SAM's layer sequence. Same outputs."""
    decoder = tiny_model.sam_mask_decoder
    enc = tiny_model.sam_prompt_encoder
    torch.manual_seed(3)
    points = (torch.rand(2, 2, 2) * S, torch.ones(2, 2, dtype=torch.int32))
    mask = torch.randn(2, 1, 32, 32)
    image = torch.randn(2, 256, 8, 8)
    high_res = [torch.randn(2, 32, 32, 32), torch.randn(2, 64, 16, 16)]

    def run() -> tuple[torch.Tensor, ...]:
        sparse, dense = enc(points, None, mask)
        return decoder(image, enc.get_dense_pe(), sparse, dense, True, False, high_res)

    with torch.enable_grad():
        want = run()
    with torch.inference_mode():
        pe = enc.get_dense_pe()
        assert enc.get_dense_pe() is pe  # kept while the Gaussian matrix is unchanged
        got = run()
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w.detach(), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        enc.pe_layer.positional_encoding_gaussian_matrix.mul_(2.0)  # a reload changes it
        try:
            assert enc.get_dense_pe() is not pe
            assert not torch.equal(enc.get_dense_pe(), pe)
        finally:
            enc.pe_layer.positional_encoding_gaussian_matrix.div_(2.0)


def test_dynamic_multimask_falls_back_on_unstable_single_mask(tiny_model: Sam2Model) -> None:
    decoder = tiny_model.sam_mask_decoder
    logits = torch.full((1, 4, 8, 8), -5.0)
    logits[0, 0] = 0.0  # single mask: every pixel within +/- delta -> stability 0
    logits[0, 2, :4] = 5.0
    ious = torch.tensor([[0.9, 0.1, 0.8, 0.3]])
    chosen, iou = decoder._dynamic_multimask_via_stability(logits, ious)
    assert torch.equal(chosen[0, 0], logits[0, 2])
    assert iou.item() == pytest.approx(0.8)
    logits[0, 0] = 5.0  # stable single mask is kept
    chosen, iou = decoder._dynamic_multimask_via_stability(logits, ious)
    assert torch.equal(chosen[0, 0], logits[0, 0])
    assert iou.item() == pytest.approx(0.9)


def test_memory_encoder_and_attention_shapes() -> None:
    encoder = MemoryEncoder(out_dim=64, in_dim=256).eval()
    with torch.inference_mode():
        out = encoder(torch.randn(2, 256, 8, 8), torch.randn(2, 1, 128, 128))
        assert out["vision_features"].shape == (2, 64, 8, 8)
        assert out["vision_pos_enc"][0].shape == (2, 64, 8, 8)
        attention = MemoryAttention(num_layers=2).eval()
        curr = torch.randn(64, 2, 256)
        memory = torch.randn(3 * 64 + 8, 2, 64)
        fused = attention(curr, memory, torch.randn(64, 2, 256), torch.randn(3 * 64 + 8, 2, 64), 8)
    assert fused.shape == (64, 2, 256)
    assert finite(fused, out["vision_features"])
    assert "memory_encoder" not in str(list(encoder.state_dict()))
    assert "mask_downsampler.encoder.12.weight" in encoder.state_dict()


def test_objects_sharing_a_frame_run_its_common_work_once_with_the_same_result() -> None:
    """Features expanded over the objects' batch: layer 0's self-attention and the memory
    encoder's feature projection run on one row, and the outputs equal a copied batch's (on
    CPU without autograd the layers then run object by object; with autograd, batched)."""
    torch.manual_seed(0)
    attention = MemoryAttention(num_layers=2, dim_feedforward=128).eval()
    encoder = MemoryEncoder(out_dim=64, in_dim=256).eval()
    rows = {"self_attn": 0, "pix_feat_proj": 0}

    def count(name: str) -> Callable[..., None]:
        return lambda m, a, o: rows.__setitem__(name, rows[name] + o.size(0))

    attention.get_submodule("layers.0.self_attn").register_forward_hook(count("self_attn"))
    encoder.pix_feat_proj.register_forward_hook(count("pix_feat_proj"))
    n, b, m = 64, 3, 2 * 64 + 8
    curr, pos = torch.randn(n, 1, 256), torch.randn(n, 1, 256)
    memory, memory_pos = torch.randn(m, b, 64), torch.randn(m, b, 64)
    pix, masks = torch.randn(1, 256, 8, 8), torch.randn(b, 1, 128, 128)
    with torch.inference_mode():
        shared = attention(curr.expand(n, b, 256), memory, pos.expand(n, b, 256), memory_pos, 8)
        shared_mem = encoder(pix.expand(b, -1, -1, -1), masks)["vision_features"]
        assert rows == {"self_attn": 1, "pix_feat_proj": 1}
        copied = attention(curr.repeat(1, b, 1), memory, pos.repeat(1, b, 1), memory_pos, 8)
        copied_mem = encoder(pix.repeat(b, 1, 1, 1), masks)["vision_features"]
        assert rows == {"self_attn": 1 + b, "pix_feat_proj": 1 + b}
    # with autograd on (training) the batch runs at once, out of place: the same numbers
    trained = attention(curr.expand(n, b, 256), memory, pos.expand(n, b, 256), memory_pos, 8)
    assert torch.allclose(shared, copied, atol=1e-5)
    assert torch.allclose(trained.detach(), copied, atol=1e-5)
    assert torch.allclose(shared_mem, copied_mem, atol=1e-5)
    assert not torch.allclose(shared[:, 0], shared[:, 1])  # the objects' memories differ


# ----------------------------------------------------------------------------- Sam2Model


def _features(model: Sam2Model, image: torch.Tensor, batch: int) -> tuple[Any, ...]:
    out = model.forward_image(image)
    out = {
        "backbone_fpn": [x.expand(batch, -1, -1, -1) for x in out["backbone_fpn"]],
        "vision_pos_enc": [x.expand(batch, -1, -1, -1) for x in out["vision_pos_enc"]],
    }
    return model._prepare_backbone_features(out)[1:]


def _click(batch: int, n: int = 1) -> dict[str, torch.Tensor]:
    return {
        "point_coords": torch.rand(batch, n, 2) * S,
        "point_labels": torch.ones(batch, n, dtype=torch.int32),
    }


def test_tracking_upsamples_only_the_chosen_mask(tiny_model: Sam2Model) -> None:
    """A single click asks for three masks; in inference only the chosen one is upsampled to
    S x S, with the values of upsampling all three and picking it."""
    torch.manual_seed(5)
    with torch.inference_mode():
        feats, pos, sizes = _features(tiny_model, torch.randn(1, 3, S, S), 2)
        empty: dict[str, dict[int, Any]] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        click = _click(2)
        upsampled: list[tuple[int, ...]] = []
        real = tiny_model._upsample

        def recorded(low_res: torch.Tensor) -> torch.Tensor:
            upsampled.append(tuple(low_res.shape))
            return real(low_res)

        tiny_model._upsample = recorded  # type: ignore[method-assign]
        try:
            out = tiny_model.track_step(0, True, feats, pos, sizes, click, None, empty, 1)
        finally:
            del tiny_model._upsample
        assert upsampled == [(2, 1, S // 4, S // 4)]
        high_res = [
            x.permute(1, 2, 0).view(x.size(1), x.size(2), *size)
            for x, size in zip(feats[:-1], sizes[:-1])
        ]
        pix = feats[-1].permute(1, 2, 0).view(2, -1, *sizes[-1]) + tiny_model.no_mem_embed.view(
            1, -1, 1, 1
        )
        heads = tiny_model._forward_sam_heads(pix, click, None, high_res, multimask_output=True)
    assert heads[1].shape == (2, 3, S, S)  # all three upsampled when asked
    torch.testing.assert_close(out["pred_masks"], heads[3])
    # (a channels-last stack of three masks may take another interpolation kernel: rounding)
    torch.testing.assert_close(out["pred_masks_high_res"], heads[4], rtol=1e-5, atol=1e-5)


def test_track_step_batched_session_shapes(tiny_model: Sam2Model) -> None:
    output_dict: dict[str, dict[int, Any]] = {
        "cond_frame_outputs": {},
        "non_cond_frame_outputs": {},
    }
    batch = 3
    with torch.inference_mode():
        feats, pos, sizes = _features(tiny_model, torch.randn(1, 3, S, S), batch)
        assert [tuple(f.shape) for f in feats] == [(32 * 32, 3, 32), (16 * 16, 3, 64), (64, 3, 256)]
        first = tiny_model.track_step(
            0, True, feats, pos, sizes, _click(batch), None, output_dict, 4
        )
        output_dict["cond_frame_outputs"][0] = first
        for t in range(1, 4):
            feats, pos, sizes = _features(tiny_model, torch.randn(1, 3, S, S), batch)
            out = tiny_model.track_step(t, False, feats, pos, sizes, None, None, output_dict, 4)
            output_dict["non_cond_frame_outputs"][t] = out
    for out in [first, *output_dict["non_cond_frame_outputs"].values()]:
        assert out["pred_masks"].shape == (batch, 1, 32, 32)
        assert out["pred_masks_high_res"].shape == (batch, 1, S, S)
        assert out["obj_ptr"].shape == (batch, 256)
        assert out["object_score_logits"].shape == (batch, 1)
        assert out["maskmem_features"].shape == (batch, 64, 8, 8)
        assert out["maskmem_pos_enc"][0].shape == (batch, 64, 8, 8)
        assert finite(out["pred_masks"], out["obj_ptr"], out["maskmem_features"])


def test_memory_selection_uses_previous_frames_and_pointers(tiny_model: Sam2Model) -> None:
    """Changing an old memory within the window changes the result; one outside does not."""
    torch.manual_seed(5)
    with torch.inference_mode():
        feats, pos, sizes = _features(tiny_model, torch.randn(1, 3, S, S), 1)

        def memory(seed: int) -> dict[str, Any]:
            g = torch.Generator().manual_seed(seed)
            return {
                "maskmem_features": torch.randn(1, 64, 8, 8, generator=g),
                "maskmem_pos_enc": [torch.randn(1, 64, 8, 8, generator=g)],
                "obj_ptr": torch.randn(1, 256, generator=g),
            }

        def fused(frames: dict[int, dict[str, Any]]) -> torch.Tensor:
            output_dict = {"cond_frame_outputs": {0: memory(0)}, "non_cond_frame_outputs": frames}
            return tiny_model._prepare_memory_conditioned_features(
                30, False, feats[-1:], pos[-1:], sizes[-1:], output_dict, 40
            )

        base = fused({t: memory(t) for t in range(1, 30)})
        assert base.shape == (1, 256, 8, 8)
        inside = fused({t: memory(t if t != 24 else 99) for t in range(1, 30)})  # 6 back
        assert not torch.allclose(base, inside)
        pointer_only = fused({t: memory(t if t != 20 else 99) for t in range(1, 30)})  # 10 back
        assert not torch.allclose(base, pointer_only)  # only its object pointer is used
        outside = fused({t: memory(t if t != 10 else 99) for t in range(1, 30)})  # 20 back
        assert torch.equal(base, outside)


def test_init_cond_frame_adds_no_mem_embed(tiny_model: Sam2Model) -> None:
    with torch.inference_mode():
        feats, pos, sizes = _features(tiny_model, torch.randn(1, 3, S, S), 2)
        out = tiny_model._prepare_memory_conditioned_features(
            0, True, feats[-1:], pos[-1:], sizes[-1:], {"cond_frame_outputs": {}}, 1
        )
    expected = (feats[-1] + tiny_model.no_mem_embed).permute(1, 2, 0).reshape(2, 256, 8, 8)
    assert torch.equal(out, expected)


def test_absent_object_gets_no_obj_score_and_pointer(
    make_tiny_model: Callable[..., Sam2Model],
) -> None:
    model = make_tiny_model()
    force_object_presence(model, -50.0)
    with torch.inference_mode():
        feats, pos, sizes = _features(model, torch.randn(1, 3, S, S), 2)
        out = model.track_step(
            0,
            True,
            feats,
            pos,
            sizes,
            _click(2),
            None,
            {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
            1,
        )
    assert (out["pred_masks"] == NO_OBJ_SCORE).all()
    assert torch.allclose(out["obj_ptr"], model.no_obj_ptr.expand(2, -1))  # fixed_no_obj_ptr


def test_mask_input_is_used_as_output(tiny_model: Sam2Model) -> None:
    mask = torch.zeros(2, 1, S, S, dtype=torch.bool)
    mask[0, :, 10:50, 20:60] = True  # object 1 gets an empty mask
    with torch.inference_mode():
        feats, pos, sizes = _features(tiny_model, torch.randn(1, 3, S, S), 2)
        out = tiny_model.track_step(
            0,
            True,
            feats,
            pos,
            sizes,
            None,
            mask,
            {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
            1,
        )
    assert torch.equal(out["pred_masks_high_res"] > 0, mask)
    assert out["object_score_logits"].flatten().tolist() == [10.0, -10.0]
    assert torch.allclose(out["obj_ptr"][1], tiny_model.no_obj_ptr[0])


def test_binarized_memory_for_clicked_frames(make_tiny_model: Callable[..., Sam2Model]) -> None:
    """With binarize_mask_from_pts_for_mem_enc, only the sign of the logits reaches memory."""
    model = make_tiny_model(binarize_mask_from_pts_for_mem_enc=True)
    with torch.inference_mode():
        feats, _, sizes = _features(model, torch.randn(1, 3, S, S), 1)
        logits = torch.randn(1, 1, S, S)
        score = torch.ones(1, 1)
        a, _ = model._encode_new_memory(feats, sizes, logits, score, True)
        b, _ = model._encode_new_memory(feats, sizes, logits * 7, score, True)
        c, _ = model._encode_new_memory(feats, sizes, logits * 7, score, False)
        absent, _ = model._encode_new_memory(feats, sizes, logits, -score, True)
    assert torch.equal(a, b)
    assert not torch.allclose(b, c)
    assert model.no_obj_embed_spatial is not None
    embed = model.no_obj_embed_spatial[0][None, :, None, None].expand_as(a)
    assert torch.allclose(absent - a, embed, atol=1e-5)


def test_bf16_memories_work_outside_autocast(tiny_model: Sam2Model) -> None:
    """Memories stored in bf16 (as the official predictor does) without any object pointer
    crash the official model outside autocast; ours casts them back to fp32."""
    with torch.inference_mode():
        feats, pos, sizes = _features(tiny_model, torch.randn(1, 3, S, S), 1)
        cond = tiny_model.track_step(
            1, True, feats, pos, sizes, _click(1), None, {"cond_frame_outputs": {}}, 3
        )
        rounded = dict(cond, maskmem_features=cond["maskmem_features"].bfloat16().float())
        stored = dict(cond, maskmem_features=cond["maskmem_features"].bfloat16())

        def track(out: dict[str, Any]) -> dict[str, Any]:
            # frame 0 tracked forward: the cond frame (1) is in the future, so no pointers
            output_dict = {"cond_frame_outputs": {1: out}, "non_cond_frame_outputs": {}}
            return tiny_model.track_step(0, False, feats, pos, sizes, None, None, output_dict, 3)

        assert torch.equal(track(stored)["pred_masks"], track(rounded)["pred_masks"])


def test_bf16_autocast_runs(tiny_model: Sam2Model) -> None:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        feats, pos, sizes = _features(tiny_model, torch.randn(1, 3, S, S), 2)
        out = tiny_model.track_step(
            0, True, feats, pos, sizes, _click(2), None, {"cond_frame_outputs": {}}, 1
        )
    assert out["pred_masks"].dtype == torch.float32
    assert finite(out["pred_masks"])


def test_multimask_rule_and_non_overlap(tiny_model: Sam2Model) -> None:
    assert tiny_model._use_multimask(True, _click(1, 1))
    assert tiny_model._use_multimask(False, None)  # tracking, 2.1 configs
    assert not tiny_model._use_multimask(True, _click(1, 2))
    logits = torch.tensor([[[[3.0, -1.0]]], [[[2.0, 4.0]]]])
    out = tiny_model._apply_non_overlapping_constraints(logits)
    assert out.flatten().tolist() == [3.0, -10.0, -10.0, 4.0]
    assert torch.equal(tiny_model._apply_non_overlapping_constraints(logits[:1]), logits[:1])


def test_select_closest_cond_frames() -> None:
    frames = {t: {"t": t} for t in (0, 10, 20, 30, 40)}
    selected, unselected = select_closest_cond_frames(22, frames, 3)
    assert sorted(selected) == [10, 20, 30]
    assert sorted(unselected) == [0, 40]
    assert select_closest_cond_frames(22, frames, -1) == (frames, {})


def test_train_mode_forward_backward(make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model().train()
    force_object_presence(model, 50.0)  # else its masks are constant (no gradient)
    feats, pos, sizes = _features(model, torch.randn(1, 3, S, S), 1)
    out = model.track_step(
        0, True, feats, pos, sizes, _click(1), None, {"cond_frame_outputs": {}}, 1
    )
    loss = out["pred_masks"].sigmoid().mean() + out["obj_ptr"].pow(2).mean()
    loss.backward()
    trunk_grad = model.image_encoder.trunk.patch_embed.proj.weight.grad
    assert trunk_grad is not None
    assert trunk_grad.abs().sum() > 0


def test_image_size_changes_the_grid() -> None:
    model = build_sam2(replace(get_config("test_tiny"), image_size=160))
    with torch.inference_mode():
        out = model.forward_image(torch.randn(1, 3, 160, 160))
    assert out["vision_features"].shape == (1, 256, 10, 10)
    assert model.sam_prompt_encoder.mask_input_size == (40, 40)
