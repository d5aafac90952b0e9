"""`python -m model predict-video` and `python -m model download`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from model.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
W, H, N = 48, 40, 5


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory, tiny_model: Any) -> Path:
    root = tmp_path_factory.mktemp("cli")
    frames = root / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        img = rng.integers(0, 40, (H, W, 3)).astype(np.uint8)
        img[5:25, 5 + 2 * i : 25 + 2 * i] = (220, 40, 40)
        Image.fromarray(img).save(frames / f"{i}.jpg")
    mask = np.zeros((H, W), np.uint8)
    mask[5:25, 5:25] = 255
    (root / "masks").mkdir()
    Image.fromarray(mask).save(root / "masks" / "m.png")
    torch.save({"model": tiny_model.state_dict()}, root / "tiny.pt")
    return root


def _write_actions(root: Path, actions: list[dict[str, Any]], name: str = "a.json") -> Path:
    path = root / name
    path.write_text(json.dumps({"actions": actions}))
    return path


def _args(root: Path, prompts: Path, out: Path, *extra: str) -> list[str]:
    return [
        "predict-video", "--config", "test_tiny", "--checkpoint", str(root / "tiny.pt"),
        "--frames", str(root / "frames"), "--prompts", str(prompts), "--out", str(out), *extra,
    ]  # fmt: skip


def test_predict_video_subprocess_writes_npz(video: Path) -> None:
    actions: list[dict[str, Any]] = [
        {"op": "add", "frame": 1, "obj_id": 7, "points": [[10, 10], [40, 30]], "labels": [1, 0]},
        {"op": "add", "frame": 1, "obj_id": 3, "box": [4, 4, 30, 30]},
        {"op": "add", "frame": 2, "obj_id": 5, "mask": "masks/m.png"},
        {"op": "propagate", "start": 2, "reverse": False},
    ]
    prompts = _write_actions(video, actions)
    out = video / "out.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "model", *_args(video, prompts, out, "--dtype", "bfloat16")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as data:
        obj_ids, logits = data["obj_ids"], data["logits"]
    assert obj_ids.dtype == np.int64
    assert list(obj_ids) == [3, 5, 7]
    assert logits.dtype == np.float32
    assert logits.shape == (N, 3, H, W)
    assert np.all(logits[0] == -1024)  # never predicted
    assert np.all(logits[1, 1] == -1024)  # object 5 has no output on frame 1
    assert not np.all(logits[1, 2] == -1024)
    # the mask prompt is the output on its frame
    assert np.array_equal(logits[2, 1] > 0, np.asarray(Image.open(video / "masks/m.png")) > 0)


def test_latest_output_wins_and_remove(video: Path, tmp_path: Path) -> None:
    actions: list[dict[str, Any]] = [
        {"op": "add", "frame": 0, "obj_id": 1, "points": [[10, 10]], "labels": [1]},
        {"op": "add", "frame": 0, "obj_id": 2, "mask": str(video / "masks/m.png")},
        {"op": "propagate"},
        {"op": "add", "frame": 0, "obj_id": 2, "mask": str(video / "masks/m.png")},
        {"op": "remove", "obj_id": 1},
        {"op": "propagate", "start": 4, "reverse": True},
    ]
    out = tmp_path / "o.npz"
    assert main(_args(video, _write_actions(tmp_path, actions), out, "--no-postprocessing")) == 0
    with np.load(out) as data:
        assert list(data["obj_ids"]) == [2]
        assert data["logits"].shape == (N, 1, H, W)
        assert not np.any(data["logits"] == -1024)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "cannot read actions"),
        ({"steps": []}, "must be an object"),
        ({"actions": [{"op": "jump"}]}, "unknown op"),
        ({"actions": [{"op": "add", "frame": 0}]}, "needs 'frame' and 'obj_id'"),
        ({"actions": [{"op": "add", "frame": 0, "obj_id": 1}]}, "points\\+labels"),
        ({"actions": [{"op": "add", "frame": 0, "obj_id": 1, "points": [[1, 1]]}]}, "together"),
        (
            {"actions": [{"op": "add", "frame": 9, "obj_id": 1, "box": [0, 0, 5, 5]}]},
            "outside the video",
        ),
        (
            {
                "actions": [
                    {"op": "add", "frame": 0, "obj_id": 1, "points": [[99, 1]], "labels": [1]}
                ]
            },
            "outside the 48x40 frame",
        ),
        ({"actions": [{"op": "propagate"}]}, "no object has prompts"),
        (
            {"actions": [{"op": "add", "frame": 0, "obj_id": 1, "mask": "nope.png"}]},
            "cannot read mask",
        ),
    ],
)
def test_bad_actions_exit_2_with_message(
    video: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    payload: Any,
    message: str,
) -> None:
    prompts = tmp_path / "bad.json"
    prompts.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    out = tmp_path / "o.npz"
    assert main(_args(video, prompts, out)) == 2
    assert message.replace("\\", "") in capsys.readouterr().err or pytest.fail(message)
    assert not out.exists()


def test_missing_frames_folder(
    video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = _write_actions(tmp_path, [])
    args = _args(video, prompts, tmp_path / "o.npz")
    args[args.index("--frames") + 1] = str(tmp_path / "nothing")
    assert main(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_download_is_wired_to_model_download(tmp_path: Path) -> None:
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"pretend checkpoint")
    sha = hashlib.sha256(blob.read_bytes()).hexdigest()
    dest = tmp_path / "dest"
    code = main(
        ["download", "sam2.1_hiera_tiny", "--dest", str(dest), "--url", blob.as_uri(),
         "--sha256", sha, "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert [p.read_bytes() for p in dest.iterdir()] == [b"pretend checkpoint"]
    assert main(["download", "sam2.1_hiera_tiny", "--dest", str(dest / "x"), "--url",
                 blob.as_uri(), "--sha256", "0" * 64, "--quiet"]) == 1  # fmt: skip
