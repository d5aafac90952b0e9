"""bf16 autocast on CPUs without bf16 units: float32 kernels on bf16-rounded operands."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import model._bf16 as bf16
from model._bf16 import Conv2d, ConvTranspose2d, Linear, emulating_bf16

BF16 = torch.bfloat16


def _autocast() -> torch.autocast:
    return torch.autocast("cpu", dtype=BF16)


@pytest.fixture
def without_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bf16, "native_bf16_kernels", lambda: False)


@pytest.fixture
def with_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bf16, "native_bf16_kernels", lambda: True)


class _OperandDtypes(TorchDispatchMode):
    """Records the dtypes of the tensors each matrix-product or convolution kernel receives."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in _PRODUCTS:
            self.seen |= {a.dtype for a in args if isinstance(a, torch.Tensor)}
        return func(*args, **(kwargs or {}))


_PRODUCTS = {
    torch.ops.aten.linear,
    torch.ops.aten.conv2d,
    torch.ops.aten.conv_transpose2d,
    torch.ops.aten.convolution,
}

# (our layer, the stock layer, input shape)
LAYERS: dict[str, tuple[Callable[[], nn.Module], Callable[[], nn.Module], list[int]]] = {
    "linear": (lambda: Linear(96, 160), lambda: nn.Linear(96, 160), [4, 50, 96]),
    "conv": (
        lambda: Conv2d(8, 24, kernel_size=7, stride=4, padding=3),
        lambda: nn.Conv2d(8, 24, kernel_size=7, stride=4, padding=3),
        [2, 8, 32, 32],
    ),
    "conv_transpose": (
        lambda: ConvTranspose2d(32, 16, kernel_size=2, stride=2),
        lambda: nn.ConvTranspose2d(32, 16, kernel_size=2, stride=2),
        [1, 32, 16, 16],
    ),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_emulated_layers_compute_what_the_bf16_kernels_compute(
    name: str, without_bf16_units: None
) -> None:
    make, make_stock, shape = LAYERS[name]
    torch.manual_seed(0)
    ours = make()
    stock = make_stock()
    stock.load_state_dict(ours.state_dict())
    x = torch.randn(shape)
    ours_kernels, stock_kernels = _OperandDtypes(), _OperandDtypes()
    with torch.inference_mode(), _autocast():
        assert emulating_bf16(x)
        with ours_kernels:
            got = ours(x)
        with stock_kernels:
            want = stock(x)
    assert got.dtype == want.dtype == BF16
    assert ours_kernels.seen == {torch.float32}
    assert stock_kernels.seen == {BF16}
    # the same rounded operands and float32 sums, in another order: at most one bf16 step apart
    step = want.float().abs().max().item() / 128
    torch.testing.assert_close(got.float(), want.float(), rtol=0, atol=step)
    with torch.inference_mode():
        exact = stock(x)
    # and really rounded to bf16 (not the float32 result)
    assert (got.float() - exact).abs().max() > 0
    assert torch.equal(got, got.float().to(BF16))


def test_rounded_weights_follow_a_reload(without_bf16_units: None) -> None:
    torch.manual_seed(0)
    layer = Linear(16, 8)
    x = torch.randn(3, 16)
    with torch.inference_mode(), _autocast():
        before = layer(x)
    other = Linear(16, 8)
    layer.load_state_dict(other.state_dict())
    with torch.inference_mode(), _autocast():
        after, want = layer(x), other(x)
    assert not torch.equal(before, after)
    assert torch.equal(after, want)


def test_layers_are_stock_where_bf16_is_native_with_autograd_or_without_autocast(
    with_bf16_units: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = torch.randn(2, 8)
    with torch.inference_mode(), _autocast():
        assert not emulating_bf16(x)  # the CPU has bf16 units
    monkeypatch.setattr(bf16, "native_bf16_kernels", lambda: False)
    with _autocast():
        assert not emulating_bf16(x)  # autograd records: training keeps the stock kernels
    with torch.inference_mode():
        assert not emulating_bf16(x)  # float32 inference
        with torch.autocast("cpu", dtype=torch.float16):
            assert not emulating_bf16(x)
    layer = Linear(8, 4)
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_the_environment_overrides_the_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    detect = bf16.native_bf16_kernels.__wrapped__  # the uncached function
    for value, native in (("native", True), ("emulate", False)):
        monkeypatch.setenv("SAM2_CPU_BF16", value)
        assert detect() is native
    monkeypatch.setenv("SAM2_CPU_BF16", "fast")
    with pytest.raises(ValueError, match="SAM2_CPU_BF16 must be auto, native or emulate"):
        detect()
