"""Checkpoint save/load in the official `{"model": state_dict}` format, and its error messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from model.build import build_sam2
from model.checkpoint import (
    CheckpointFormatError,
    CheckpointMismatchError,
    ChecksumMismatchError,
    load_checkpoint,
    save_checkpoint,
    sha256_file,
)
from model.config import get_config
from model.sam2_base import Sam2Model
from tests.model.conftest import PARITY_IMAGE_SIZE, build_official


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_round_trip_and_sha256(tmp_path: Path, make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model(seed=3)
    path = tmp_path / "ckpt" / "tiny.pt"
    digest = save_checkpoint(model, path)
    assert digest == sha256_file(path)
    assert len(digest) == 64
    assert not [p for p in path.parent.iterdir() if p.name != "tiny.pt"]  # no temp files left
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert list(payload) == ["model"]
    assert all(v.dtype == torch.float32 for v in payload["model"].values())

    fresh = make_tiny_model(seed=9)
    load_checkpoint(fresh, path, expected_sha256=digest.upper())
    _assert_same_state(fresh, model)
    built = build_sam2("test_tiny", path, expected_sha256=digest)
    _assert_same_state(built, model)


def test_save_writes_fp32_from_a_bf16_model(
    tmp_path: Path, make_tiny_model: Callable[..., Sam2Model]
) -> None:
    model = make_tiny_model().to(torch.bfloat16)
    save_checkpoint(model, tmp_path / "bf16.pt")
    state = torch.load(tmp_path / "bf16.pt", weights_only=True)["model"]
    assert {v.dtype for v in state.values()} == {torch.float32}


def _write(path: Path, payload: Any) -> Path:
    torch.save(payload, path)
    return path


def test_mismatched_keys_are_named(tmp_path: Path, tiny_model: Sam2Model) -> None:
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    del state["no_mem_embed"]
    del state["obj_ptr_tpos_proj.bias"]
    state["extra.weight"] = torch.zeros(2)
    state["image_encoder.trunk.patch_embed.proj.weight"] = torch.zeros(64, 3)
    path = _write(tmp_path / "bad.pt", {"model": state})
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(tiny_model, path)
    message = str(info.value)
    assert "missing: no_mem_embed, obj_ptr_tpos_proj.bias" in message
    assert "unexpected: extra.weight" in message
    assert (
        "shape: image_encoder.trunk.patch_embed.proj.weight (got 64x3, expected 16x3x7x7)"
        in message
    )
    assert info.value.missing == ["no_mem_embed", "obj_ptr_tpos_proj.bias"]


def test_a_checkpoint_of_another_size_is_refused(tmp_path: Path, tiny_model: Sam2Model) -> None:
    other = build_sam2(get_config("sam2.1_hiera_t"), device="meta")
    state = {k: torch.zeros(v.shape) for k, v in other.state_dict().items()}
    path = _write(tmp_path / "t.pt", {"model": state})
    with pytest.raises(CheckpointMismatchError, match=r"(?s)unexpected: .*\(\+\d+ more\).*shape: "):
        load_checkpoint(tiny_model, path)


def test_bad_files_get_clear_errors(tmp_path: Path, tiny_model: Sam2Model) -> None:
    good = tmp_path / "good.pt"
    save_checkpoint(tiny_model, good)
    with pytest.raises(
        ChecksumMismatchError, match="sha256 mismatch .* expected 0+, got [0-9a-f]{64}"
    ):
        load_checkpoint(tiny_model, good, expected_sha256="0" * 64)
    with pytest.raises(CheckpointFormatError, match="holds a list"):
        load_checkpoint(tiny_model, _write(tmp_path / "list.pt", [1, 2]))
    with pytest.raises(CheckpointFormatError, match='no "model" entry .*state_dict'):
        load_checkpoint(tiny_model, _write(tmp_path / "bare.pt", {"weights": torch.zeros(1)}))
    with pytest.raises(CheckpointFormatError, match="not a state_dict of tensors"):
        load_checkpoint(tiny_model, _write(tmp_path / "odd.pt", {"model": [1]}))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointFormatError, match="not a readable torch checkpoint"):
        load_checkpoint(tiny_model, garbage)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tiny_model, tmp_path / "absent.pt")


def test_training_checkpoints_with_extra_entries_load(
    tmp_path: Path, tiny_model: Sam2Model
) -> None:
    path = _write(
        tmp_path / "train.pt", {"model": tiny_model.state_dict(), "optimizer": {}, "epoch": 3}
    )
    fresh = build_sam2("test_tiny")
    load_checkpoint(fresh, path)
    _assert_same_state(fresh, tiny_model)


@pytest.mark.official
def test_round_trip_with_the_official_builder(
    tmp_path: Path, official_pair: tuple[Any, Sam2Model]
) -> None:
    """our save -> Meta's build_sam2 loads it and computes the same; Meta's save -> we load."""
    official, ours = official_pair
    ours_path = tmp_path / "ours.pt"
    save_checkpoint(ours, ours_path)
    reloaded = build_official(
        "sam2.1_hiera_t", image_size=PARITY_IMAGE_SIZE, video=True, ckpt_path=str(ours_path)
    )
    _assert_same_state(reloaded, ours)
    image = torch.randn(1, 3, PARITY_IMAGE_SIZE, PARITY_IMAGE_SIZE)
    with torch.inference_mode():
        theirs_out = reloaded.forward_image(image)["backbone_fpn"]
        ours_out = ours.forward_image(image)["backbone_fpn"]
    for a, b in zip(ours_out, theirs_out):
        # float32 rounding only: kernels sum in a CPU-dependent order through 12 blocks
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * b.abs().max().item())

    official_path = tmp_path / "official.pt"
    torch.save({"model": official.state_dict()}, official_path)
    loaded = build_sam2(get_config("sam2.1_hiera_t", PARITY_IMAGE_SIZE), official_path)
    _assert_same_state(loaded, official)
