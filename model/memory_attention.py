"""Memory attention: conditions the current frame's features on the memory bank."""

from __future__ import annotations

import torch
from torch import nn

from model._layers import activation_fn
from model.transformer import RoPEAttention


class MemoryAttentionLayer(nn.Module):
    """Pre-norm layer: RoPE self-attention, RoPE cross-attention to memories, FFN.

    tgt `[B, N, d_model]` (current frame tokens), memory `[B, M, mem_dim]`, pos `[B, M, mem_dim]`
    (memory encodings), query_pos `[B, N, d_model]` -> `[B, N, d_model]`.
    """

    def __init__(
        self,
        d_model: int = 256,
        mem_dim: int = 64,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        rope_theta: float = 10000.0,
        pos_enc_at_attn: bool = False,
        pos_enc_at_cross_attn_keys: bool = True,
        pos_enc_at_cross_attn_queries: bool = False,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.self_attn = RoPEAttention(d_model, 1, dropout=dropout, rope_theta=rope_theta)
        self.cross_attn_image = RoPEAttention(
            d_model,
            1,
            dropout=dropout,
            kv_in_dim=mem_dim,
            rope_theta=rope_theta,
            rope_k_repeat=True,
        )
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = activation_fn(activation)
        self.pos_enc_at_attn = pos_enc_at_attn
        self.pos_enc_at_cross_attn_keys = pos_enc_at_cross_attn_keys
        self.pos_enc_at_cross_attn_queries = pos_enc_at_cross_attn_queries

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        num_k_exclude_rope: int = 0,
    ) -> torch.Tensor:
        x = self.norm1(tgt)
        q = x + query_pos if self.pos_enc_at_attn else x
        tgt = tgt + self.dropout1(self.self_attn(q, q, v=x))

        x = self.norm2(tgt)
        x = self.cross_attn_image(
            q=x + query_pos if self.pos_enc_at_cross_attn_queries else x,
            k=memory + pos if self.pos_enc_at_cross_attn_keys else memory,
            v=memory,
            num_k_exclude_rope=num_k_exclude_rope,
        )
        tgt = tgt + self.dropout2(x)

        x = self.linear2(self.dropout(self.activation(self.linear1(self.norm3(tgt)))))
        return tgt + self.dropout3(x)


class MemoryAttention(nn.Module):
    """A stack of `MemoryAttentionLayer`s plus a final LayerNorm, on sequence-first tensors.

    curr `[N, B, d_model]` (or a 1-element list of it), curr_pos likewise, memory and memory_pos
    `[M, B, mem_dim]`; the last `num_obj_ptr_tokens` memory tokens are object pointers (no RoPE).
    Returns `[N, B, d_model]`.
    """

    def __init__(
        self,
        d_model: int = 256,
        mem_dim: int = 64,
        num_layers: int = 4,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        rope_theta: float = 10000.0,
        pos_enc_at_input: bool = True,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.num_layers = num_layers
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(
                d_model=d_model,
                mem_dim=mem_dim,
                dim_feedforward=dim_feedforward,
                dropout=dropout,
                rope_theta=rope_theta,
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.pos_enc_at_input = pos_enc_at_input

    def forward(
        self,
        curr: torch.Tensor | list[torch.Tensor],
        memory: torch.Tensor,
        curr_pos: torch.Tensor | list[torch.Tensor] | None = None,
        memory_pos: torch.Tensor | None = None,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        if isinstance(curr, list):
            curr = curr[0]
        if isinstance(curr_pos, list):
            curr_pos = curr_pos[0]
        if curr_pos is None or memory_pos is None:
            raise ValueError("memory attention needs curr_pos and memory_pos")
        if curr.shape[1] != memory.shape[1]:
            raise ValueError("current features and memory differ in batch size")
        output = curr
        if self.pos_enc_at_input:
            output = output + 0.1 * curr_pos
        # the layers work batch first
        output = output.transpose(0, 1)
        query_pos = curr_pos.transpose(0, 1)
        memory = memory.transpose(0, 1)
        memory_pos = memory_pos.transpose(0, 1)
        for layer in self.layers:
            output = layer(
                output, memory, memory_pos, query_pos, num_k_exclude_rope=num_obj_ptr_tokens
            )
        return self.norm(output).transpose(0, 1)
