"""Checkpoint files in the official SAM 2 format: `torch.save({"model": state_dict})`.

Files we write load with Meta's `build_sam2(config, ckpt_path)` and official files load here,
strictly: any missing, unexpected or mis-shaped key is an error naming the first offenders.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

_HASH_CHUNK = 1 << 20
_MAX_NAMED = 5


class CheckpointError(ValueError):
    """A checkpoint file cannot be used."""


class CheckpointFormatError(CheckpointError):
    """The file is not a `{"model": state_dict}` checkpoint."""


class ChecksumMismatchError(CheckpointError):
    """The file's sha256 is not the expected one."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's keys or shapes do not match the model."""

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        self.missing = missing
        self.unexpected = unexpected
        self.shape_mismatches = shape_mismatches
        super().__init__(self._describe())

    def _describe(self) -> str:
        def named(keys: list[str]) -> str:
            more = f" (+{len(keys) - _MAX_NAMED} more)" if len(keys) > _MAX_NAMED else ""
            return ", ".join(keys[:_MAX_NAMED]) + more

        def dims(shape: tuple[int, ...]) -> str:
            return "x".join(str(d) for d in shape) or "scalar"

        parts = []
        if self.missing:
            parts.append(f"missing: {named(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected: {named(self.unexpected)}")
        if self.shape_mismatches:
            shapes = [
                f"{key} (got {dims(got)}, expected {dims(want)})"
                for key, got, want in self.shape_mismatches
            ]
            parts.append(f"shape: {named(shapes)}")
        return "checkpoint does not match the model; " + "; ".join(parts)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected_sha256: str) -> None:
    """Raise `ChecksumMismatchError` unless the file's sha256 is `expected_sha256`."""
    actual = sha256_file(path)
    if actual != expected_sha256.strip().lower():
        raise ChecksumMismatchError(
            f"sha256 mismatch for {path}: expected {expected_sha256}, got {actual}"
        )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The `"model"` state_dict of a checkpoint file (tensors on the CPU)."""
    try:
        payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many types for corrupt or non-torch files
        raise CheckpointFormatError(f"{path} is not a readable torch checkpoint: {exc}") from exc
    if not isinstance(payload, dict):
        raise CheckpointFormatError(
            f'{path} holds a {type(payload).__name__}, expected a dict {{"model": state_dict}}'
        )
    if "model" not in payload:
        keys = ", ".join(map(str, list(payload)[:_MAX_NAMED]))
        raise CheckpointFormatError(
            f'{path} has no "model" entry (top-level keys: {keys}); '
            'expected {"model": state_dict}'
        )
    state_dict = payload["model"]
    if not isinstance(state_dict, dict) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise CheckpointFormatError(f'{path}: "model" is not a state_dict of tensors')
    return state_dict


def check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Raise `CheckpointMismatchError` unless keys and shapes equal the model's exactly."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        (k, tuple(v.shape), tuple(expected[k].shape))
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(missing, unexpected, shapes)


def load_checkpoint(
    model: nn.Module, path: str | Path, expected_sha256: str | None = None
) -> nn.Module:
    """Strictly load `{"model": state_dict}` from `path` into `model` (returned).

    Raises `ChecksumMismatchError` (wrong sha256, checked first), `CheckpointFormatError`
    (not a checkpoint dict) or `CheckpointMismatchError` (keys/shapes differ).
    """
    if expected_sha256 is not None:
        verify_sha256(path, expected_sha256)
    state_dict = read_state_dict(path)
    check_state_dict(model, state_dict)
    model.load_state_dict(state_dict, strict=True)
    return model


def save_checkpoint(model: nn.Module, path: str | Path) -> str:
    """Write `{"model": state_dict}` (contiguous fp32 CPU tensors) atomically; return its sha256.

    The file loads with Meta's `build_sam2(config_file, ckpt_path)`.
    """
    path = Path(path)
    state_dict = {
        key: (
            value.detach().to("cpu", torch.float32)
            if value.is_floating_point()
            else value.detach().to("cpu")
        )
        .contiguous()
        .clone()
        for key, value in model.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"model": state_dict}, f)
        digest = sha256_file(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return digest
