"""A video session's tracking state written to a folder and read back: exact, cheap to move.

What a `VideoSession` knows after its prompts and propagations is its objects' state: prompts
(point and mask inputs), the outputs of prompts not yet propagated, the memory bank
(conditioning outputs, the non-conditioning window in RAM, the outputs spilled to disk) and the
tracking marks (`tracked`, `current`, `reliable`). `export_state` writes exactly that; another
process's session on the same model and frames `import_state`s it and then behaves as the first
one would: the same masks for the next click or propagation, without re-running the model.

Folder layout: ``state.pt`` (tensors and marks, ``torch.save``; loaded with
``weights_only=True``) and ``spill/<bank>-<frame>.pt``, the spilled outputs, hard-linked from the
session's spill folder when both are on one filesystem (copied otherwise). Spill files are
written atomically by the session (a new file each time), so a link never changes under a
reader. Frame features are not part of the state (see `VideoSession.feature_store`).
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from model._memory import FrameOutput, MemoryBank
from model.video_predictor import ObjectState, VideoSession

STATE_FILE = "state.pt"
SPILL_DIR = "spill"
FORMAT = 1


class StateError(RuntimeError):
    """A state folder this session cannot take (other format, no spill store, missing file)."""


def _out(out: FrameOutput) -> dict[str, Any]:
    return {
        "obj_ptr": out.obj_ptr,
        "object_score_logits": out.object_score_logits,
        "pred_masks": out.pred_masks,
        "maskmem_features": out.maskmem_features,
        "iou": out.iou,
    }


def _outs(outs: dict[int, FrameOutput]) -> dict[int, dict[str, Any]]:
    return {int(t): _out(o) for t, o in outs.items()}


def _frame_output(data: dict[str, Any]) -> FrameOutput:
    return FrameOutput(**data)


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def export_state(session: VideoSession, dest: Path) -> None:
    """Write the session's objects' state into the (new, empty) folder `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    spill_dir = dest / SPILL_DIR
    spill_dir.mkdir(exist_ok=True)
    objects = []
    for obj in session._objects.values():
        bank = obj.memory
        spilled = sorted(bank._spilled)
        if spilled:
            if bank.spill is None:  # pragma: no cover - a bank spills only with a store
                raise StateError("spilled outputs without a spill store")
            for t in spilled:
                name = bank.spill._path(bank.key, t).name
                _link(bank.spill._path(bank.key, t), spill_dir / name)
        objects.append(
            {
                "obj_id": obj.obj_id,
                "bank": bank.key,
                "point_inputs": {int(t): dict(p) for t, p in obj.point_inputs.items()},
                "mask_inputs": {int(t): m for t, m in obj.mask_inputs.items()},
                "pending_cond": _outs(obj.pending_cond),
                "pending_non_cond": _outs(obj.pending_non_cond),
                "tracked": {int(t): bool(r) for t, r in obj.tracked.items()},
                "current": sorted(obj.current),
                "reliable": {int(t): bool(r) for t, r in obj.reliable.items()},
                "cond": _outs(bank.cond),
                "non_cond": _outs(bank._non_cond),
                "spilled": spilled,
            }
        )
    state = {
        "format": FORMAT,
        "objects": objects,
        "maskmem_pos_enc": session._maskmem_pos_enc,
    }
    torch.save(state, dest / STATE_FILE)


def import_state(session: VideoSession, src: Path) -> None:
    """Replace the session's objects by the state in `src` (written by `export_state` for the
    same model, frames and options); its feature cache is kept. On error the session is left
    empty (reset) and `StateError` or `OSError` is raised."""
    state = torch.load(src / STATE_FILE, map_location=session.device, weights_only=True)
    if state.get("format") != FORMAT:
        raise StateError(f"state format {state.get('format')!r}, expected {FORMAT}")
    session.reset()
    try:
        _import_objects(session, state, src / SPILL_DIR)
    except BaseException:
        session.reset()
        raise


def _import_objects(session: VideoSession, state: dict[str, Any], spill_src: Path) -> None:
    spill = session._spill
    highest = -1
    for data in state["objects"]:
        key = str(data["bank"])
        if data["spilled"] and spill is None:
            raise StateError("the state has spilled outputs; this session has no spill store")
        bank = MemoryBank(
            key=key,
            heavy_window=session._heavy_window,
            light_window=session._light_window,
            spill=spill,
            device=session.device,
        )
        for t in data["spilled"]:
            assert spill is not None
            target = spill._path(key, t)
            target.unlink(missing_ok=True)
            _link(spill_src / target.name, target)
            bank._spilled.add(int(t))
        bank.cond = {t: _frame_output(o) for t, o in data["cond"].items()}
        bank._non_cond = {t: _frame_output(o) for t, o in data["non_cond"].items()}
        obj = ObjectState(
            obj_id=int(data["obj_id"]),
            memory=bank,
            point_inputs={t: dict(p) for t, p in data["point_inputs"].items()},
            mask_inputs=dict(data["mask_inputs"]),
            pending_cond={t: _frame_output(o) for t, o in data["pending_cond"].items()},
            pending_non_cond={t: _frame_output(o) for t, o in data["pending_non_cond"].items()},
            tracked=dict(data["tracked"]),
            current=set(data["current"]),
            reliable=dict(data["reliable"]),
        )
        session._objects[obj.obj_id] = obj
        if key.startswith("b") and key[1:].isdigit():
            highest = max(highest, int(key[1:]))
    if state["maskmem_pos_enc"] is not None:
        session._maskmem_pos_enc = list(state["maskmem_pos_enc"])
    # new objects get bank keys that no imported bank uses (their spill files share a folder)
    following = next(session._bank_ids)
    session._bank_ids = itertools.count(max(following, highest + 1))
