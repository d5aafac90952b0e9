"""Builders shared by the training tests: tiny checkpoints, registered versions, model settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.inference import registry
from engine.models import ModelVersion
from engine.training import versions
from tests.engine.test_auto_masklets import tiny_checkpoint


def register_tiny(tmp_path: Path, name: str, seed: int = 0, **kw: Any) -> ModelVersion:
    path = tiny_checkpoint(tmp_path / f"{name}.pt", seed=seed)
    return versions.do_register_checkpoint(None, path, name=name, config="test_tiny", **kw)


@pytest.fixture
def model_settings(settings: Any, tmp_path: Path) -> Any:
    """CPU, a private model cache folder, no SAM2_CHECKPOINT fallback, empty process caches."""
    from engine.annotation.sessions import CACHE

    settings.SAM2_CACHE_DIR = str(tmp_path / "model-cache")
    settings.SAM2_CHECKPOINT = ""
    settings.SAM2_CONFIG = ""
    settings.SAM2_CHECKPOINT_DIR = ""
    settings.SAM2_DEVICE = "cpu"
    CACHE.clear()
    registry.clear_model_cache()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield settings
    torch.set_num_threads(threads)
    CACHE.clear()
    registry.clear_model_cache()
