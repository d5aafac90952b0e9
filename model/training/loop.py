"""The training loop: `train(model, clips, config)` in one process (CPU or GPU) or under torchrun
(DDP), resumable, writing checkpoints in the official format (`torch.load(p)["model"]` is a strict
state_dict for our `Sam2Model` and Meta's `SAM2Base`).

Determinism: the clips of step s are positions s*B .. s*B+B-1 of a sequence of per-epoch
permutations seeded by (seed, epoch); everything random about global clip j of step s (window,
objects, flip, prompts, clicks, dropout) comes from generators seeded by (seed, s, j). So a DDP run,
where rank r takes clips j = r, r + world, ..., samples exactly what one process samples for the
same global batch, and a resumed run continues as if never interrupted.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from model.sam2_base import Sam2Model
from model.training import distributed
from model.training.clips import TrainClip, check_trainable, prepare_sample, sample_window
from model.training.config import TrainConfig
from model.training.forward import ClipLoss
from model.training.optim import build_optimizer, set_learning_rates
from model.training.prompts import plan_prompts

PART_NAMES = ("mask", "dice", "iou", "class")


@dataclass(frozen=True)
class StepStats:
    """After optimiser step `step` (1-based): weighted loss of the global batch, its unweighted
    parts (focal "mask", "dice", "iou", "class"), the base learning rate used, wall seconds."""

    step: int
    loss: float
    parts: dict[str, float]
    lr: float
    seconds: float


@dataclass
class TrainResult:
    steps_done: int  # optimiser steps done in total (including those before a resume)
    losses: list[float]  # loss of each step of this call
    stopped: bool  # should_stop ended the run early


def clip_order(num_clips: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Indices of the clips of global batch `step` (epoch-wise shuffles of all clips)."""
    indices = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, num_clips)
        permutation = np.random.default_rng([seed, epoch, 0xC11]).permutation(num_clips)
        indices.append(int(permutation[offset]))
    return indices


def clip_rng(seed: int, step: int, j: int) -> np.random.Generator:
    """The generator of global clip `j` of step `step`."""
    return np.random.default_rng([seed, step, j])


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    config: TrainConfig | None = None,
) -> None:
    """Atomically write `{"model": fp32 CPU state_dict, "step": step}`, plus `"optimizer"`,
    `"config"` (a dict) and `"rng"` (seed and torch CPU RNG state) when known."""
    state = {
        key: (
            value.detach().to("cpu", torch.float32)
            if value.is_floating_point()
            else value.detach().cpu()
        )
        .contiguous()
        .clone()
        for key, value in model.state_dict().items()
    }
    payload: dict[str, Any] = {"model": state, "step": int(step)}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if config is not None:
        payload["config"] = asdict(config)
        payload["rng"] = {"seed": config.seed, "torch": torch.get_rng_state()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_training_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig
) -> int:
    """Restore model, optimiser and RNG from a checkpoint of ours; returns the steps done."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "optimizer" not in payload or "step" not in payload:
        raise ValueError(f"{path} is not a resumable training checkpoint (no optimizer/step)")
    saved_seed = payload.get("config", {}).get("seed", config.seed)
    if saved_seed != config.seed:
        raise ValueError(f"{path} was trained with seed {saved_seed}, not {config.seed}")
    model.load_state_dict(payload["model"], strict=True)
    optimizer.load_state_dict(payload["optimizer"])
    if "rng" in payload:
        torch.set_rng_state(payload["rng"]["torch"])
    return int(payload["step"])


def _autocast(device: torch.device, enabled: bool) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _restored_rng(device: torch.device) -> Any:
    """A context that restores the global torch RNG (seeded inside it for dropout and drop
    path) when it ends."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def train(
    model: Sam2Model,
    clips: Sequence[TrainClip],
    config: TrainConfig,
    *,
    checkpoint_path: Path | None = None,
    resume: bool = False,
    on_step: Callable[[StepStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Fine-tune `model` (in place, on its device) for `config.steps` optimiser steps.

    Under torchrun every rank calls this with the same clips and config; rank r takes its share
    of each global batch and DDP averages the gradients. `checkpoint_path`: written (rank 0) every
    `checkpoint_every` steps, when `should_stop` returns True, and at the end. `resume`: continue
    from `checkpoint_path` if the file exists (model, optimiser, step). `on_step` runs on rank 0
    after every step; `should_stop` is asked before every step (on every rank; any True stops
    all). `freeze_image_encoder` turns off `requires_grad` of the encoder's parameters for good.
    The model is left in eval mode.
    """
    if not clips:
        raise ValueError("no training clips")
    check_trainable(clips)
    device = model.device
    info = distributed.init_distributed(device.type)
    if config.batch_size % info.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} must be a multiple of the {info.world_size} ranks"
        )
    model.train()
    optimizer = build_optimizer(model, config)
    start = 0
    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        start = load_training_state(Path(checkpoint_path), model, optimizer, config)
    wrapper = ClipLoss(model)
    runner: nn.Module = wrapper
    ddp = info.world_size > 1
    if ddp:
        runner = DistributedDataParallel(wrapper, find_unused_parameters=True)
    params = [p for p in model.parameters() if p.requires_grad]
    image_size = model.image_size

    def checkpoint(step: int) -> None:
        if checkpoint_path is not None and info.is_main:
            save_checkpoint(checkpoint_path, model, optimizer, step, config)
        distributed.barrier()

    losses: list[float] = []
    stopped = False
    step = start
    try:
        while step < config.steps:
            if should_stop is not None and distributed.any_rank(should_stop()):
                stopped = True
                break
            began = time.perf_counter()
            lr = set_learning_rates(optimizer, config, step)
            order = clip_order(len(clips), config.batch_size, step, config.seed)
            num_objects = sum(
                len(
                    sample_window(
                        clips[i],
                        config.num_frames,
                        config.max_objects,
                        clip_rng(config.seed, step, j),
                    )[2]
                )
                for j, i in enumerate(order)
            )
            mine = [j for j in range(config.batch_size) if j % info.world_size == info.rank]
            optimizer.zero_grad(set_to_none=True)
            totals = torch.zeros(len(PART_NAMES) + 1, device=device)
            for k, j in enumerate(mine):
                rng = clip_rng(config.seed, step, j)
                sample = prepare_sample(
                    clips[order[j]],
                    image_size,
                    config.num_frames,
                    config.max_objects,
                    rng,
                    config.hflip_prob,
                )
                plan = plan_prompts(sample.gt_masks.shape[0], config, rng)
                seed = int(rng.integers(2**62))
                generator = torch.Generator(device=device).manual_seed(seed)
                last = k == len(mine) - 1
                with runner.no_sync() if ddp and not last else nullcontext():  # type: ignore[operator]
                    with _restored_rng(device), _autocast(device, config.bf16):
                        torch.manual_seed(seed)
                        parts = runner(
                            sample,
                            plan,
                            num_objects=float(num_objects),
                            correction_clicks=config.correction_clicks,
                            prob_click_from_gt=config.prob_click_from_gt,
                            add_corrected_frames_as_cond=config.add_corrected_frames_as_cond,
                            rng=rng,
                            generator=generator,
                            iou_loss=config.iou_loss,
                        )
                    # DDP averages gradients over ranks; the batch loss is their sum
                    (parts["total"] * info.world_size).backward()
                totals += torch.stack([parts[n].detach() for n in (*PART_NAMES, "total")])
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            step += 1
            totals = distributed.sum_across_ranks(totals).cpu()
            loss = float(totals[-1])
            losses.append(loss)
            if (
                config.checkpoint_every
                and step % config.checkpoint_every == 0
                and step < config.steps
            ):
                checkpoint(step)
            if on_step is not None and info.is_main:
                on_step(
                    StepStats(
                        step=step,
                        loss=loss,
                        parts={n: float(v) for n, v in zip(PART_NAMES, totals[:-1])},
                        lr=lr,
                        seconds=time.perf_counter() - began,
                    )
                )
        checkpoint(step)
    finally:
        model.eval()
    return TrainResult(steps_done=step, losses=losses, stopped=stopped)
