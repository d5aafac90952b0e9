"""Command line: `python -m model predict-video ...`, `python -m model download ...` and
`python -m model train ...` (see model/training/cli.py).

predict-video applies a script of actions (ACTIONS.json) to a video session and writes OUT.npz:

    {"actions": [
        {"op": "add", "frame": F, "obj_id": K, "points": [[x, y], ...], "labels": [1, 0, ...]},
        {"op": "add", "frame": F, "obj_id": K, "box": [x0, y0, x1, y1]},
        {"op": "add", "frame": F, "obj_id": K, "mask": "path/to/binary.png"},
        {"op": "propagate", "start": F, "reverse": false},
        {"op": "remove", "obj_id": K}
    ]}

Coordinates are pixels of the video frames; mask paths are relative to the ACTIONS.json folder.
`points`/`labels` and `box` may be combined (the box comes first, as in the official predictor);
`start` may be omitted or null (earliest prompted frame), `reverse` defaults to false.
OUT.npz holds `obj_ids` (int64, sorted) and `logits` (float32, frames x objects x H x W): each
frame's latest output of each object, -1024 where never predicted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from model._prompts import PromptError
from model.frames import FolderFrameSource, FrameSourceError
from model.video_predictor import NO_OBJ_SCORE, FrameResult, VideoSession


class ActionError(ValueError):
    """ACTIONS.json is malformed."""


def load_actions(path: str | Path) -> list[dict[str, Any]]:
    """Read and shape-check ACTIONS.json; returns its list of actions."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ActionError(f"cannot read actions file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("actions"), list):
        raise ActionError('actions file must be an object {"actions": [...]}')
    actions: list[dict[str, Any]] = data["actions"]
    for i, action in enumerate(actions):
        if not isinstance(action, dict):
            raise ActionError(f"action {i} is not an object")
        op = action.get("op")
        if op == "add":
            if "frame" not in action or "obj_id" not in action:
                raise ActionError(f"action {i}: 'add' needs 'frame' and 'obj_id'")
            kinds = [k for k in ("points", "box", "mask") if k in action]
            if not kinds or ("mask" in kinds and len(kinds) > 1):
                raise ActionError(f"action {i}: 'add' needs points+labels, a box, or a mask")
            if ("points" in action) != ("labels" in action):
                raise ActionError(f"action {i}: 'points' and 'labels' go together")
        elif op == "propagate":
            if not isinstance(action.get("reverse", False), bool):
                raise ActionError(f"action {i}: 'reverse' must be true or false")
        elif op == "remove":
            if "obj_id" not in action:
                raise ActionError(f"action {i}: 'remove' needs 'obj_id'")
        else:
            raise ActionError(f"action {i}: unknown op {op!r} (add, propagate, remove)")
    return actions


def read_binary_mask(path: Path) -> np.ndarray:
    """A PNG (any mode) as a bool (H, W) array: nonzero pixels are foreground."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("L"))
    except OSError as exc:
        raise ActionError(f"cannot read mask {path}: {exc}") from exc
    return arr > 0


class LatestLogits:
    """Each frame's latest logits per object, assembled into the OUT.npz arrays at the end."""

    def __init__(self) -> None:
        self.frames: dict[int, dict[int, np.ndarray]] = {}

    def update(self, result: FrameResult) -> None:
        per_obj = self.frames.setdefault(result.frame_idx, {})
        for i, obj_id in enumerate(result.obj_ids):
            per_obj[obj_id] = result.logits[i, 0].numpy().astype(np.float32, copy=True)

    def forget(self, obj_id: int) -> None:
        for per_obj in self.frames.values():
            per_obj.pop(obj_id, None)

    def arrays(self, num_frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        obj_ids = sorted({k for per_obj in self.frames.values() for k in per_obj})
        logits = np.full((num_frames, len(obj_ids), height, width), NO_OBJ_SCORE, np.float32)
        col = {obj_id: j for j, obj_id in enumerate(obj_ids)}
        for frame_idx, per_obj in self.frames.items():
            for obj_id, arr in per_obj.items():
                logits[frame_idx, col[obj_id]] = arr
        return np.asarray(obj_ids, dtype=np.int64), logits


def run_actions(
    session: VideoSession, actions: list[dict[str, Any]], base_dir: Path
) -> LatestLogits:
    """Apply actions in order, as the official predictor's calls would; collect outputs."""
    latest = LatestLogits()
    for action in actions:
        op = action["op"]
        if op == "add":
            frame, obj_id = action["frame"], action["obj_id"]
            if "mask" in action:
                mask = read_binary_mask(base_dir / action["mask"])
                latest.update(session.add_mask(frame, obj_id, mask))
            else:
                latest.update(
                    session.add_points(
                        frame,
                        obj_id,
                        action.get("points"),
                        action.get("labels"),
                        box=action.get("box"),
                    )
                )
        elif op == "propagate":
            for result in session.propagate(
                action.get("start"), reverse=action.get("reverse", False)
            ):
                latest.update(result)
        elif op == "remove":
            for result in session.remove_object(action["obj_id"]):
                latest.update(result)
            latest.forget(action["obj_id"])
    return latest


def predict_video(args: argparse.Namespace) -> int:
    from model.video_predictor import build_video_predictor

    frames = FolderFrameSource(args.frames)
    actions = load_actions(args.prompts)
    predictor = build_video_predictor(
        args.config,
        args.checkpoint,
        image_size=args.image_size,
        device=args.device,
        apply_postprocessing=not args.no_postprocessing,
        dtype=args.dtype,
    )
    with predictor.start_session(frames) as session:
        latest = run_actions(session, actions, Path(args.prompts).resolve().parent)
    obj_ids, logits = latest.arrays(len(frames), frames.height, frames.width)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        np.savez(fh, obj_ids=obj_ids, logits=logits)
    print(f"wrote {out}: {len(obj_ids)} objects x {logits.shape[0]} frames")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model", description="SAM 2 tools")
    sub = parser.add_subparsers(dest="command", required=True)
    pv = sub.add_parser("predict-video", help="segment a video from a script of prompts")
    pv.add_argument("--config", required=True, help="model config name, e.g. sam2.1_hiera_t")
    pv.add_argument("--image-size", type=int, default=None, help="model input size (px)")
    pv.add_argument("--checkpoint", required=True, help='{"model": state_dict} file')
    pv.add_argument("--frames", required=True, help="folder of frames (<int>.jpg)")
    pv.add_argument("--prompts", required=True, help="ACTIONS.json")
    pv.add_argument("--out", required=True, help="OUT.npz")
    pv.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    pv.add_argument(
        "--no-postprocessing",
        action="store_true",
        help="official evaluation setting (apply_postprocessing=False)",
    )
    pv.add_argument("--device", default="cpu", help="cpu or cuda")
    pv.set_defaults(func=predict_video)
    # parsed by model.download.download_main (NAME --dest DIR [--sha256] [--url] ...)
    sub.add_parser("download", help="download an official SAM 2.1 checkpoint", add_help=False)
    from model.training.cli import add_train_parser

    add_train_parser(sub)  # train --config NAME --data DIR --steps N --out PATH ...
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["download"]:
        from model.download import download_main

        return download_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (PromptError, ActionError, FrameSourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
