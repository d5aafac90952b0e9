"""The GPU path on CPU: compiled modules (traced with the eager backend) give the same tracks,
and closing a session releases what it held. The CUDA run itself is benchmarks/device_check.sh."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from model.frames import ArrayFrameSource
from model.gpu import compile_model
from model.video_predictor import SessionOptions, VideoSession

W, H = 64, 48


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (H, W, 3)).astype(np.uint8) for _ in range(n)]


def _track(model: Any) -> list[torch.Tensor]:
    with VideoSession(model, ArrayFrameSource(_frames(4)), SessionOptions()) as session:
        session.add_points(0, 1, [[20, 20]], [1])
        return [r.logits for r in session.propagate()]


@pytest.mark.slow  # dynamo tracing takes about a minute on 2 shared cores
def test_compiled_image_encoder_and_memory_attention_track_the_same(
    make_tiny_model: Any,
) -> None:
    pytest.importorskip("torch._dynamo")
    plain = _track(make_tiny_model(seed=2))
    model = make_tiny_model(seed=2)
    compile_model(model, backend="eager")
    compile_model(model, backend="eager")  # idempotent
    assert model.image_encoder._sam2_compiled
    assert model.memory_attention._sam2_compiled
    compiled = _track(model)
    for a, b in zip(plain, compiled):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    torch._dynamo.reset()


def test_close_releases_features_memory_and_spill(tiny_model: Any) -> None:
    session = VideoSession(tiny_model, ArrayFrameSource(_frames(4)), SessionOptions())
    session.add_points(0, 1, [[20, 20]], [1])
    list(session.propagate())
    spill = session._spill
    assert spill is not None
    session.close()
    assert session.obj_ids == []
    assert session.memory_stats()["cached_feature_frames"] == []
    assert not spill.root.exists()
