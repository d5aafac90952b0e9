"""Build a `Sam2Model` from a config (name or dataclass), optionally loading a checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from model.checkpoint import load_checkpoint
from model.config import Sam2Config, get_config
from model.sam2_base import Sam2Model


def postprocessing_config(config: Sam2Config, apply_postprocessing: bool = True) -> Sam2Config:
    """The model settings of Meta's `build_sam2_video_predictor(apply_postprocessing=...)`.

    True: dynamic multimask fallback via stability (delta 0.05, thresh 0.98) and binarised masks
    of clicked frames in the memory encoder. False: the config unchanged (the YAML values).
    """
    if not apply_postprocessing:
        return config
    return replace(
        config,
        dynamic_multimask_via_stability=True,
        dynamic_multimask_stability_delta=0.05,
        dynamic_multimask_stability_thresh=0.98,
        binarize_mask_from_pts_for_mem_enc=True,
    )


def build_sam2(
    config: Sam2Config | str,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    apply_postprocessing: bool = True,
    expected_sha256: str | None = None,
) -> Sam2Model:
    """A `Sam2Model` in eval mode on `device`.

    `config` is a `Sam2Config` or a name from `model.config.CONFIGS`. `checkpoint` is a
    `{"model": state_dict}` file (official or ours), loaded strictly; `expected_sha256` checks
    the file first. Without a checkpoint the weights are random.
    """
    if isinstance(config, str):
        config = get_config(config)
    model = Sam2Model(postprocessing_config(config, apply_postprocessing))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, expected_sha256=expected_sha256)
    model = model.to(device)
    model.eval()
    return model
