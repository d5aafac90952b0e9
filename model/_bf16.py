"""Linear and convolution layers that keep bf16 autocast fast on CPUs without bf16 units.

Under `torch.autocast("cpu", dtype=torch.bfloat16)` PyTorch runs Linear and convolution layers
in bf16. Where the CPU has no bf16 matrix instructions (no AVX-512 BF16 or AMX: oneDNN reports
no bf16 support), those kernels are emulated; on an AVX2 server a bf16 Linear ran 5-8x and a
bf16 convolution up to 140x slower than in float32 (`benchmarks/README.md`). The environment
variable SAM2_CPU_BF16 overrides the detection ("native" or "emulate").

On such CPUs, and only for inference (no autograd graph), the layers here compute what
autocast asks for with float32 kernels: operands rounded to bf16, products accumulated in
float32 (as the bf16 kernels do), the result rounded to bf16. The numbers are those of the
bf16 kernels up to summation order. Elsewhere they are the plain `torch.nn` layers, and their
parameters and state_dict keys are always the same.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd

BF16 = torch.bfloat16


ENV_VAR = "SAM2_CPU_BF16"  # "auto" (default), "native" or "emulate"


@functools.cache
def native_bf16_kernels() -> bool:
    """Whether bf16 autocast keeps PyTorch's bf16 kernels on this CPU: where oneDNN runs bf16
    natively (AVX-512 BF16 or AMX), unless `SAM2_CPU_BF16` is "native" or "emulate"."""
    choice = os.environ.get(ENV_VAR, "auto")
    if choice not in ("auto", "native", "emulate"):
        raise ValueError(f"{ENV_VAR} must be auto, native or emulate, got {choice!r}")
    if choice != "auto":
        return choice == "native"
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def emulating_bf16(x: torch.Tensor) -> bool:
    """Whether a layer seeing `x` should run its bf16 autocast product in float32."""
    return (
        x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == BF16
        and not native_bf16_kernels()
    )


def _rounded(x: torch.Tensor) -> torch.Tensor:
    """`x` rounded to bf16, held in float32."""
    return x.float() if x.dtype == BF16 else x.to(BF16).float()


def _rounded_parameters(layer: nn.Linear | _ConvNd) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The layer's weight and bias rounded to bf16 (held in float32), cached on the layer and
    rebuilt when either changes (a load or an optimiser step bumps the version; `.to()` moves
    the data)."""
    weight, bias = layer.weight, layer.bias
    key: tuple[int, ...] = (weight.data_ptr(), weight._version)
    if bias is not None:
        key += (bias.data_ptr(), bias._version)
    cached = layer.__dict__.get("_bf16_rounded")
    if cached is None or cached[0] != key:
        rounded_bias = None if bias is None else _rounded(bias.detach())
        cached = (key, _rounded(weight.detach()), rounded_bias)
        layer.__dict__["_bf16_rounded"] = cached
    return cached[1], cached[2]


def _in_float32(
    layer: nn.Linear | _ConvNd,
    x: torch.Tensor,
    product: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
) -> torch.Tensor:
    """`product(x, weight, bias)` on bf16-rounded operands with float32 kernels, rounded to
    bf16: what the layer's bf16 kernel computes."""
    weight, bias = _rounded_parameters(layer)
    with torch.autocast("cpu", enabled=False):
        return product(_rounded(x), weight, bias).to(BF16)


class Linear(nn.Linear):
    """`nn.Linear`, run as a float32 GEMM on bf16-rounded operands when `emulating_bf16`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if emulating_bf16(x):
            return _in_float32(self, x, F.linear)
        return super().forward(x)


class Conv2d(nn.Conv2d):
    """`nn.Conv2d`, run in float32 on bf16-rounded operands when `emulating_bf16`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if emulating_bf16(x):
            return _in_float32(self, x, self._conv_forward)
        return super().forward(x)


class ConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d`, run in float32 on bf16-rounded operands when `emulating_bf16`."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is None and emulating_bf16(x):
            return _in_float32(self, x, self._transposed)
        return super().forward(x, output_size)

    def _transposed(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        padding = cast(tuple[int, int], self.padding)  # a pair unless "same"/"valid" strings
        return F.conv_transpose2d(
            x, weight, bias, self.stride, padding, self.output_padding, self.groups, self.dilation
        )
