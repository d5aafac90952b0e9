"""The training loop (model/training/loop.py): learning, resume, checkpoints, DDP, stop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.config import get_config
from model.sam2_base import Sam2Model
from model.training.clips import TrainClip, save_clips
from model.training.config import TrainConfig
from model.training.loop import StepStats, clip_order, train
from model.training.synthetic import moving_discs_clips

ROOT = Path(__file__).resolve().parents[2]
# float32 and a high learning rate: the tiny random model must learn in a few steps
FAST: dict[str, Any] = {"bf16": False, "base_lr": 1e-3, "vision_lr": 1e-3, "num_frames": 2}


@pytest.fixture(scope="module")
def clips() -> list[TrainClip]:
    return moving_discs_clips(2, seed=1, num_frames=3)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _fresh_model(seed: int = 0) -> Sam2Model:
    torch.manual_seed(seed)
    return Sam2Model(get_config("test_tiny"))


def test_loss_falls_on_a_fixed_clip_set(clips: list[TrainClip]) -> None:
    # point prompts with one correction click on every clip: steps are comparable
    config = TrainConfig(steps=25, batch_size=2, prob_point_prompt=1.0, correction_clicks=1, **FAST)
    stats: list[StepStats] = []
    result = train(_fresh_model(), clips, config, on_step=stats.append)
    assert result.steps_done == 25
    assert not result.stopped
    assert [s.step for s in stats] == list(range(1, 26))
    losses = result.losses
    # step 1 only collapses the random initialisation; learning shows after it
    early, late = sum(losses[1:6]) / 5, sum(losses[-5:]) / 5
    assert late < 0.75 * early, losses
    assert stats[-1].lr < stats[0].lr  # cosine schedule
    assert set(stats[0].parts) == {"mask", "dice", "iou", "class"}


def test_resume_gives_the_weights_of_an_uninterrupted_run(
    clips: list[TrainClip], tmp_path: Path
) -> None:
    config = TrainConfig(steps=4, **FAST)
    straight = _fresh_model()
    train(straight, clips, config)

    interrupted = _fresh_model()
    ckpt = tmp_path / "run.pt"
    calls = iter(range(100))
    result = train(
        interrupted, clips, config, checkpoint_path=ckpt, should_stop=lambda: next(calls) >= 2
    )
    assert result.stopped
    assert result.steps_done == 2
    assert torch.load(ckpt, weights_only=True)["step"] == 2

    resumed = _fresh_model(seed=99)  # other weights: everything comes from the checkpoint
    result = train(resumed, clips, config, checkpoint_path=ckpt, resume=True)
    assert result.steps_done == 4
    assert len(result.losses) == 2
    expected = _weights(straight)
    for key, value in _weights(resumed).items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=1e-7, msg=key)
    assert torch.load(ckpt, weights_only=True)["step"] == 4


def test_checkpoint_loads_strictly_into_our_model(clips: list[TrainClip], tmp_path: Path) -> None:
    model = _fresh_model()
    before = _weights(model)
    ckpt = tmp_path / "out.pt"
    train(model, clips, TrainConfig(steps=1, **FAST), checkpoint_path=ckpt)
    payload = torch.load(ckpt, weights_only=True)
    assert {"model", "optimizer", "step", "config", "rng"} <= set(payload)
    loaded = load_checkpoint(Sam2Model(get_config("test_tiny")), ckpt)
    after = _weights(model)
    assert any(not torch.equal(before[k], after[k]) for k in after)  # training changed weights
    for key, value in _weights(loaded).items():
        assert torch.equal(value, after[key]), key


def test_frozen_image_encoder_stays_unchanged(clips: list[TrainClip]) -> None:
    model = _fresh_model()
    before = _weights(model)
    train(model, clips, TrainConfig(steps=1, freeze_image_encoder=True, **FAST))
    after = _weights(model)
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("image_encoder."))
    assert not torch.equal(before["no_mem_embed"], after["no_mem_embed"])


def test_clip_order_visits_every_clip_once_per_epoch() -> None:
    order = [i for step in range(3) for i in clip_order(5, 2, step, seed=7)][:5]
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert clip_order(5, 2, 1, seed=7) == clip_order(5, 2, 1, seed=7)


def test_clips_without_any_object_are_refused(clips: list[TrainClip]) -> None:
    empty = TrainClip(clips[0].frames, clips[0].masks & False)
    with pytest.raises(ValueError, match="no visible object"):
        train(_fresh_model(), [empty], TrainConfig(steps=1, **FAST))


def test_torchrun_two_processes_equal_one_process(clips: list[TrainClip], tmp_path: Path) -> None:
    """2 gloo ranks x 1 clip = 1 process x 2 clips (same global batch), through the CLI."""
    init = tmp_path / "init.pt"
    torch.save({"model": _fresh_model(seed=3).state_dict()}, init)
    save_clips(tmp_path / "data", clips)
    out = tmp_path / "ddp.pt"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'platform'}",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "model", "train", "--config", "test_tiny", "--data", str(tmp_path / "data"),
        "--steps", "2", "--out", str(out), "--init", str(init), "--batch-size", "2",
        "--num-frames", "2", "--no-bf16", "--base-lr", "1e-3", "--vision-lr", "1e-3",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 process(es)" in done.stdout
    assert "step 2/2" in done.stdout

    single = Sam2Model(get_config("test_tiny"))
    load_checkpoint(single, init)
    # one thread, as each rank has: the same reduction order in every kernel
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(single, clips, TrainConfig(steps=2, batch_size=2, **FAST))
    finally:
        torch.set_num_threads(threads)
    ddp = torch.load(out, weights_only=True)["model"]
    initial = torch.load(init, weights_only=True)["model"]
    assert any(not torch.equal(ddp[k], initial[k]) for k in ddp)
    for key, value in _weights(single).items():
        torch.testing.assert_close(ddp[key], value, rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.official
def test_trained_checkpoint_loads_in_metas_code_with_the_same_outputs(tmp_path: Path) -> None:
    pytest.importorskip("sam2")
    from tests.model.conftest import build_official

    torch.manual_seed(0)
    ours = Sam2Model(get_config("sam2.1_hiera_t", 128))
    clip_set = moving_discs_clips(1, seed=2, num_frames=2, size=128)
    ckpt = tmp_path / "t.pt"
    train(ours, clip_set, TrainConfig(steps=1, **FAST), checkpoint_path=ckpt)
    official = build_official("sam2.1_hiera_t", image_size=128, ckpt_path=str(ckpt)).eval()
    image = torch.randn(1, 3, 128, 128)
    clicks = {"point_coords": torch.tensor([[[40.0, 50.0]]]), "point_labels": torch.tensor([[1]])}
    outputs = []
    with torch.no_grad():
        for model in (ours, official):
            backbone = model.forward_image(image)
            _, feats, _, sizes = model._prepare_backbone_features(backbone)
            features = feats[-1].permute(1, 2, 0).view(1, -1, *sizes[-1]) + 0
            high_res = [x.permute(1, 2, 0).view(1, -1, *s) for x, s in zip(feats[:-1], sizes[:-1])]
            outputs.append(
                model._forward_sam_heads(features, clicks, None, high_res, multimask_output=True)
            )
    for got, want in zip(outputs[0], outputs[1]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_cli_trains_and_resumes(
    clips: list[TrainClip], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model.__main__ import main

    save_clips(tmp_path / "data", clips)
    out = tmp_path / "model.pt"
    common = ["train", "--config", "test_tiny", "--data", str(tmp_path / "data"), "--out", str(out)]
    assert main([*common, "--steps", "1", "--num-frames", "2", "--drop-path", "0.1"]) == 0
    first = capsys.readouterr().out
    assert "bf16 False" in first  # CPU default: float32
    assert "step 1/1" in first
    assert main([*common, "--steps", "2", "--num-frames", "2", "--resume"]) == 0
    second = capsys.readouterr().out
    assert "step 2/2" in second
    assert "step 1/2" not in second  # continued from the checkpoint's step 1
    assert torch.load(out, weights_only=True)["step"] == 2
    load_checkpoint(Sam2Model(get_config("test_tiny")), out)


def test_bf16_autocast_step(clips: list[TrainClip]) -> None:
    model = _fresh_model()
    before = _weights(model)
    config = TrainConfig(steps=1, num_frames=2, bf16=True, prob_point_prompt=1.0)
    result = train(model, clips, config)
    assert torch.isfinite(torch.tensor(result.losses)).all()
    after = _weights(model)
    assert all(v.dtype == torch.float32 for v in after.values() if v.is_floating_point())
    assert any(not torch.equal(before[k], after[k]) for k in after)
