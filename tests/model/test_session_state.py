"""A session's state exported and imported into another session continues exactly as the first
one would (a correction with memory, a propagation), spilled outputs included; features can come
from a shared store instead of the backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from model.frames import ArrayFrameSource
from model.session_state import export_state, import_state
from model.video_predictor import SessionOptions, VideoSession

W, H, N = 64, 48, 12


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(N):
        img = rng.integers(0, 40, (H, W, 3)).astype(np.uint8)
        img[10:30, 5 + 2 * i : 25 + 2 * i] = (220, 40, 40)
        out.append(img)
    return out


@pytest.fixture
def present_model(make_tiny_model: Any) -> Any:
    model = make_tiny_model(seed=3)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[2].bias.fill_(30.0)
    return model


def _session(model: Any, spill: Path) -> VideoSession:
    opts = SessionOptions(fill_hole_area=0, spill_dir=str(spill))
    return VideoSession(model, ArrayFrameSource(_frames()), opts)


def _continue(session: VideoSession) -> list[torch.Tensor]:
    """A correction on a tracked frame (memory attention), a new object, a propagation."""
    out = [session.add_points(2, 1, [[20, 20], [40, 40]], [1, 0]).logits]
    out.append(session.add_points(5, 2, [[50, 40]], [1]).logits)
    out += [r.logits for r in session.propagate(start_frame_idx=0)]
    return out


def test_an_imported_state_continues_exactly_as_the_exported_session(
    present_model: Any, tmp_path: Path
) -> None:
    # given: clicks and a propagation long enough that outputs were spilled to disk
    first = _session(present_model, tmp_path)
    first.add_points(0, 1, [[15, 20]], [1])
    first.add_points(0, 1, [[15, 20], [50, 5]], [1, 0])
    for _ in first.propagate():
        pass
    assert first._objects[1].memory._spilled, "the test needs spilled outputs"
    export_state(first, tmp_path / "state")
    # when: another session (its own spill folder) imports it
    second = _session(present_model, tmp_path)
    import_state(second, tmp_path / "state")
    # then: both continue identically (the import itself ran no model)
    assert second.backbone_runs == 0
    expected, got = _continue(first), _continue(second)
    assert len(expected) == len(got) == 2 + N
    for a, b in zip(expected, got):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    first.close()
    second.close()


def test_a_saved_state_keeps_its_spilled_outputs_when_the_session_rewrites_them(
    present_model: Any, tmp_path: Path
) -> None:
    session = _session(present_model, tmp_path)
    session.add_points(0, 1, [[15, 20]], [1])
    for _ in session.propagate():
        pass
    export_state(session, tmp_path / "state")
    saved = {p.name: p.read_bytes() for p in (tmp_path / "state" / "spill").iterdir()}
    assert saved
    # a correction and a new propagation spill the same frames again (new files, same names)
    session.add_points(0, 1, [[15, 20], [60, 45]], [1, 0])
    for _ in session.propagate():
        pass
    assert {p.name: p.read_bytes() for p in (tmp_path / "state" / "spill").iterdir()} == saved
    session.close()


class DictStore:
    def __init__(self) -> None:
        self.fpn: dict[int, list[torch.Tensor]] = {}
        self.pos: list[torch.Tensor] | None = None

    def load(self, frame_idx: int) -> list[torch.Tensor] | None:
        return self.fpn.get(frame_idx)

    def save(self, frame_idx: int, fpn: list[torch.Tensor]) -> None:
        self.fpn[frame_idx] = [t.clone() for t in fpn]

    def load_pos(self) -> list[torch.Tensor] | None:
        return self.pos

    def save_pos(self, pos: list[torch.Tensor]) -> None:
        self.pos = [t.clone() for t in pos]


def test_features_from_the_shared_store_are_not_computed_again(
    present_model: Any, tmp_path: Path
) -> None:
    store = DictStore()
    first = _session(present_model, tmp_path)
    first.feature_store = store
    first.add_points(0, 1, [[15, 20]], [1])
    expected = [r.logits for r in first.propagate()]
    assert first.backbone_runs == N
    assert sorted(store.fpn) == list(range(N))
    second = _session(present_model, tmp_path)
    second.feature_store = store
    second.add_points(0, 1, [[15, 20]], [1])
    got = [r.logits for r in second.propagate()]
    assert second.backbone_runs == 0
    for a, b in zip(expected, got):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
