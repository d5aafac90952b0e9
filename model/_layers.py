"""Small building blocks shared by the SAM 2 modules."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from model._bf16 import Linear


class MLP(nn.Module):
    """`num_layers` Linear layers with `activation` between them (not after the last).

    The Linears live in `.layers.N`, as in the official checkpoints. Input `[..., input_dim]`,
    output `[..., output_dim]`; `sigmoid_output` squashes the output to (0, 1).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        in_dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        out_dims = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.num_layers = num_layers
        self.layers = nn.ModuleList(Linear(i, o) for i, o in zip(in_dims, out_dims))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = activate_fresh(x, self.act)
        return torch.sigmoid(x) if self.sigmoid_output else x


def activate_fresh(
    x: torch.Tensor, act: nn.Module | Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """`act(x)` for a fresh tensor `x` (a Linear's output nobody else holds): in place for GELU
    and ReLU when no autograd graph is recorded, which saves allocating and streaming a second
    tensor of the (large) hidden size."""
    if not torch.is_grad_enabled():
        if act is F.relu or type(act) is nn.ReLU:
            return torch.relu_(x)
        if act is F.gelu:
            return torch.ops.aten.gelu_(x)
        if isinstance(act, nn.GELU):
            return torch.ops.aten.gelu_(x, approximate=act.approximate)
    return act(x)


def is_expanded(x: torch.Tensor, dim: int) -> bool:
    """Whether `x` holds one row expanded (stride 0) over a dimension `dim` of size > 1: e.g.
    a frame's features shared by all objects tracked on it."""
    return x.size(dim) > 1 and x.stride(dim) == 0


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dim of a `[B, C, H, W]` tensor (weight/bias of shape `[C]`)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class DropPath(nn.Module):
    """Stochastic depth: in training, zero whole samples with probability `drop_prob`."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def drop_path_or_identity(drop_prob: float) -> nn.Module:
    return DropPath(drop_prob) if drop_prob > 0.0 else nn.Identity()


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The functional activation called `name` ("relu" or "gelu")."""
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    raise ValueError(f"activation must be 'relu' or 'gelu', got {name!r}")
