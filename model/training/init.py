"""Initialisation for training SAM 2 from scratch: a memory attention that starts out local.

A random memory attention attends almost uniformly over the memory bank, so each location of the
current frame reads the average of all memories: the object's mask is averaged away, the mask
decoder learns to ignore the memory, and the model never tracks (it segments the most salient
thing on every frame; `benchmarks/bench_memory_learning.py` measured it: two objects prompted on
frame 0 get the same masks after it). Meta's models learned the lookup from SA-V at scale; a small
model trained here on CPU does not get there.

`localize_memory_attention` sets the query and key biases of every memory cross-attention so that
their rotary (RoPE) part scores each memory token by how close it lies to the query, peaking at
the same location: location p then starts out reading the memories at p, their mask included,
which is what tracking a slowly moving object needs. Only biases change: the architecture and the
checkpoint layout stay Meta's, and training moves the biases like any other parameter.
"""

from __future__ import annotations

from typing import cast

import torch

from model.memory_attention import MemoryAttentionLayer
from model.sam2_base import Sam2Model
from model.transformer import RoPEAttention


def locality_bias(head_dim: int, strength: float, frequencies: int) -> torch.Tensor:
    """`[head_dim]` bias for both queries and keys of an axial-RoPE attention.

    The RoPE table rotates complex pair j (real dims 2j, 2j+1) with the token's x for j below
    head_dim / 4 and with its y above, at angles that fall with j. A real value `strength` in the
    first `frequencies` pairs of each axis makes the bias part of q . k equal to
    `strength**2 * sum_j (cos(f_j dx) + cos(f_j dy))`: largest at dx = dy = 0.
    """
    quarter = head_dim // 4
    if not 0 < frequencies <= quarter:
        raise ValueError(f"frequencies must be in [1, {quarter}], got {frequencies}")
    bias = torch.zeros(head_dim)
    for axis_start in (0, quarter):
        for j in range(axis_start, axis_start + frequencies):
            bias[2 * j] = strength
    return bias


@torch.no_grad()
def localize_memory_attention(
    model: Sam2Model, strength: float = 4.5, frequencies: int = 12
) -> None:
    """Give every memory cross-attention the locality bias (see `locality_bias`), in place.

    Object-pointer tokens are not rotated, so they score as if they lay at the query's own
    location: every location also reads the pointers, which carry the object's identity.
    """
    for layer in cast(list[MemoryAttentionLayer], list(model.memory_attention.layers)):
        attention: RoPEAttention = layer.cross_attn_image
        head_dim = attention.internal_dim // attention.num_heads
        bias = locality_bias(head_dim, strength, frequencies).repeat(attention.num_heads)
        attention.q_proj.bias.copy_(bias)
        attention.k_proj.bias.copy_(bias)


@torch.no_grad()
def mask_only_memory(model: Sam2Model) -> list[torch.nn.Parameter]:
    """Zero the memory encoder's image projection (`pix_feat_proj`) and return its parameters
    with `requires_grad` off: memories then carry the mask alone, the clean signal the decoder
    first learns to follow. Hand the parameters back to training with `requires_grad_(True)`:
    they grow from zero as the image helps. (From scratch, the image term soon outweighs the
    mask term many times over; measured in `benchmarks/bench_memory_learning.py`.)"""
    projection = model.memory_encoder.pix_feat_proj
    params = list(projection.parameters())
    for param in params:
        param.zero_()
        param.requires_grad_(False)
    return params
