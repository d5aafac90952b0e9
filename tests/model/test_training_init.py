"""The from-scratch initialisation of the memory (model.training.init)."""

from __future__ import annotations

import pytest
import torch

from model.build import build_sam2
from model.memory_attention import MemoryAttentionLayer
from model.sam2_base import Sam2Model
from model.training.init import locality_bias, localize_memory_attention, mask_only_memory


def _fresh_model() -> Sam2Model:
    torch.manual_seed(0)
    return build_sam2("test_tiny")


def _same_place_share(model: Sam2Model) -> float:
    """Share of the 8x8 current-frame tokens whose strongest memory key (one memory frame of
    8x8 tokens, unit-variance features as the layer norms give) lies at their own location."""
    layer = model.memory_attention.layers[0]
    assert isinstance(layer, MemoryAttentionLayer)
    attention = layer.cross_attn_image
    side = model.config.image_embedding_size
    tokens = side * side
    generator = torch.Generator().manual_seed(1)
    current = torch.randn(1, tokens, model.config.d_model, generator=generator)
    memory = torch.randn(1, tokens, model.config.mem_dim, generator=generator)
    with torch.no_grad():
        queries = attention.project_queries(current)  # [1, heads, N, d], rotated
        keys, _ = attention.project_keys_values(memory, memory, tokens, 0)
        scores = (queries @ keys.transpose(-1, -2))[0, 0]  # [N queries, N keys]
    return float((scores.argmax(dim=1) == torch.arange(tokens)).float().mean())


def test_localized_memory_attention_reads_each_location_from_the_same_place() -> None:
    model = _fresh_model()
    before = _same_place_share(model)
    localize_memory_attention(model, strength=4.5)
    after = _same_place_share(model)
    assert before < 0.2  # a random attention looks anywhere
    assert after > 0.9


def test_locality_bias_scores_fall_with_distance() -> None:
    from model.position_encoding import apply_rope, axial_rope_table

    bias = locality_bias(64, strength=2.0, frequencies=8)
    table = axial_rope_table(64, 8, 8)
    rotated = apply_rope(bias.expand(1, 1, 64, 64).contiguous(), table)[0, 0]  # [64 tokens, 64]
    scores = rotated @ rotated[0]  # every location against the top-left one
    by_distance = {d: float(scores[d]) for d in (0, 1, 2, 4)}  # along the first row
    assert by_distance[0] > by_distance[1] > by_distance[2] > by_distance[4]
    with pytest.raises(ValueError, match="frequencies"):
        locality_bias(64, 1.0, 17)


def test_mask_only_memory_forgets_the_image_and_stays_frozen() -> None:
    model = _fresh_model()
    frozen = mask_only_memory(model)
    assert frozen
    assert all(not p.requires_grad for p in frozen)
    side = model.config.image_embedding_size
    mask = torch.zeros(1, 1, side * 16, side * 16)
    mask[..., 20:60, 30:70] = 10.0
    encoder = model.memory_encoder
    with torch.no_grad():
        first = encoder(torch.randn(1, model.config.d_model, side, side), mask)
        second = encoder(torch.randn(1, model.config.d_model, side, side), mask)
        other_mask = encoder(torch.randn(1, model.config.d_model, side, side), -mask)
    assert torch.equal(first["vision_features"], second["vision_features"])
    assert not torch.allclose(first["vision_features"], other_mask["vision_features"])
