"""Builders shared by the training tests: tiny checkpoints, registered versions, model settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.inference import registry
from engine.models import ModelVersion
from engine.training import versions
from model.build import build_sam2
from model.checkpoint import save_checkpoint


def tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """A random ``test_tiny`` SAM 2 in the official format (objects forced present)."""
    torch.manual_seed(seed)
    net = build_sam2("test_tiny")
    head: Any = net.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[2].bias.fill_(30.0)
    save_checkpoint(net, path)
    return path


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
