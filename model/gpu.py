"""The GPU path: `torch.compile` of the heavy modules (as Meta's `vos_optimized` predictor) and
releasing cached CUDA memory.

Run on CUDA with `dtype="bfloat16"` (autocast, as Meta's scripts) and, for throughput,
`compile_model(model)` once after loading: the image encoder is compiled with static shapes
(every frame has the same size) and memory attention with dynamic shapes (the number of memory
tokens grows over the first frames and with conditioning frames). The first frames are slow
while kernels are compiled. Nothing here changes the weights or the state_dict keys.
"""

from __future__ import annotations

from typing import Any

import torch


def compile_model(
    model: Any,
    *,
    image_encoder: bool = True,
    memory_attention: bool = True,
    mode: str | None = "max-autotune",
    backend: str = "inductor",
    fullgraph: bool = False,
) -> Any:
    """Compile `model.image_encoder` and `model.memory_attention` in place; returns `model`.

    Compiling is idempotent (a module already compiled is left alone). `mode` is passed to
    `torch.compile` ("max-autotune" as Meta's VOS-optimised predictor; "reduce-overhead" or
    "default" compile faster); `backend="eager"` only traces (tests on CPU). `fullgraph`
    refuses graph breaks (Meta compiles with it; our Hiera has one, `torch.result_type` in its
    bf16 fast path, so the default allows them).
    """
    options: dict[str, Any] = {"backend": backend, "fullgraph": fullgraph}
    if backend == "inductor":
        options["mode"] = mode
    if image_encoder and not getattr(model.image_encoder, "_sam2_compiled", False):
        model.image_encoder.forward = torch.compile(
            model.image_encoder.forward, dynamic=False, **options
        )
        model.image_encoder._sam2_compiled = True
    if memory_attention and not getattr(model.memory_attention, "_sam2_compiled", False):
        model.memory_attention.forward = torch.compile(
            model.memory_attention.forward, dynamic=True, **options
        )
        model.memory_attention._sam2_compiled = True
    return model


def release_cuda_memory(device: torch.device) -> None:
    """Return cached blocks of a CUDA device to the driver (a no-op elsewhere)."""
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def enable_tf32() -> None:
    """TF32 matmuls and convolutions on Ampere and later (Meta's benchmark settings)."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
