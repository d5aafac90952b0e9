"""The per-object memory bank of a video session, bounded in RAM.

What tracking frame t needs from object o (official `_prepare_memory_conditioned_features`):

* all conditioning frames of o (frames that received prompts): spatial memory + object pointer;
* the spatial memories of the `num_maskmem - 1` frames before t in tracking order;
* the object pointers of the `max_obj_ptrs_in_encoder - 1` frames before t.

So the bank keeps conditioning frames in RAM, plus a sliding window of non-conditioning frames:
"heavy" entries (spatial memory + low-res logits) within the spatial-memory window and "light"
entries (object pointer + object score) within the pointer window. Everything outside is evicted:
written to an optional spill directory on disk (so a later correction on any frame still sees
exactly what the official predictor would), or dropped when there is no spill store.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

import torch


@dataclass
class FrameOutput:
    """One object's result on one frame (batch dimension 1, as the official compact output).

    Attributes:
        obj_ptr: object pointer, (1, C) with C = hidden dim (256).
        object_score_logits: (1, 1); > 0 means the object is present.
        pred_masks: low-res mask logits (1, 1, S/4, S/4) fp32 (post-processed if enabled), or
            None when only the light part is in RAM.
        maskmem_features: spatial memory (1, mem_dim, S/16, S/16) bf16, or None when the memory
            encoder has not run yet (prompted frames before propagation) or it is not in RAM.
    """

    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    pred_masks: torch.Tensor | None
    maskmem_features: torch.Tensor | None
    iou: float | None = None  # predicted IoU of the mask (not kept when spilled)

    @property
    def is_light(self) -> bool:
        return self.pred_masks is None

    def light(self) -> FrameOutput:
        """The same output without its large tensors."""
        return replace(self, pred_masks=None, maskmem_features=None)


class SpillStore:
    """Evicted frame outputs as small files in a private temporary directory."""

    def __init__(self, parent: str | Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sam2-session-", dir=parent))
        # removed even if the session is never closed explicitly
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, True)

    def _path(self, bank_key: str, frame_idx: int) -> Path:
        return self.root / f"{bank_key}-{frame_idx}.pt"

    def save(self, bank_key: str, frame_idx: int, out: FrameOutput) -> None:
        tensors = {
            "obj_ptr": out.obj_ptr,
            "object_score_logits": out.object_score_logits,
            "pred_masks": out.pred_masks,
            "maskmem_features": out.maskmem_features,
        }
        torch.save(
            {k: v.cpu() if v is not None else None for k, v in tensors.items()},
            self._path(bank_key, frame_idx),
        )

    def load(self, bank_key: str, frame_idx: int, device: torch.device) -> FrameOutput:
        data = torch.load(self._path(bank_key, frame_idx), map_location=device, weights_only=True)
        return FrameOutput(**data)

    def delete(self, bank_key: str, frame_idx: int) -> None:
        self._path(bank_key, frame_idx).unlink(missing_ok=True)

    def close(self) -> None:
        self._finalizer()


class MemoryBank:
    """Conditioning and non-conditioning outputs of one object.

    Args:
        key: unique name of this bank inside its spill store.
        heavy_window: how many frames, counted back from the last tracked frame, keep their
            spatial memory and low-res logits in RAM.
        light_window: how many frames keep their object pointer in RAM (>= heavy_window).
        spill: where evicted outputs go; None drops them.
        device: device that loaded outputs are moved to.
    """

    def __init__(
        self,
        key: str,
        heavy_window: int,
        light_window: int,
        spill: SpillStore | None,
        device: torch.device,
    ) -> None:
        self.key = key
        self.heavy_window = heavy_window
        self.light_window = max(light_window, heavy_window)
        self.spill = spill
        self.device = device
        self.cond: dict[int, FrameOutput] = {}
        self._non_cond: dict[int, FrameOutput] = {}
        self._spilled: set[int] = set()

    # -- non-conditioning outputs -------------------------------------------------------------
    def has_non_cond(self, frame_idx: int) -> bool:
        return frame_idx in self._non_cond or frame_idx in self._spilled

    def non_cond_frames(self) -> set[int]:
        return set(self._non_cond) | self._spilled

    def available(self, frame_idx: int, heavy: bool) -> bool:
        """Whether `get_non_cond(frame_idx, heavy)` would return an output."""
        if frame_idx in self._spilled and self.spill is not None:
            return True
        out = self._non_cond.get(frame_idx)
        return out is not None and (not heavy or not out.is_light)

    def discard_non_cond(self, frame_idx: int) -> None:
        self._non_cond.pop(frame_idx, None)
        if frame_idx in self._spilled:
            self._spilled.discard(frame_idx)
            if self.spill is not None:
                self.spill.delete(self.key, frame_idx)

    def get_non_cond(self, frame_idx: int, heavy: bool = True) -> FrameOutput | None:
        """The stored output, loading it from the spill store when `heavy` parts are needed."""
        out = self._non_cond.get(frame_idx)
        if out is not None and (not heavy or not out.is_light):
            return out
        if frame_idx in self._spilled and self.spill is not None:
            return self.spill.load(self.key, frame_idx, self.device)
        if out is not None and heavy:
            return None  # the large tensors were dropped (no spill store)
        return out

    def put_non_cond(self, frame_idx: int, out: FrameOutput) -> None:
        self._non_cond[frame_idx] = out
        if frame_idx in self._spilled:
            self._spilled.discard(frame_idx)
            if self.spill is not None:
                self.spill.delete(self.key, frame_idx)

    def get_any(self, frame_idx: int) -> FrameOutput | None:
        """The conditioning output on the frame, else the non-conditioning one (heavy)."""
        out = self.cond.get(frame_idx)
        if out is None:
            out = self.get_non_cond(frame_idx, heavy=True)
        return out

    # -- eviction -----------------------------------------------------------------------------
    def trim(self, last_frame: int, reverse: bool, keep: frozenset[int] = frozenset()) -> None:
        """Evict non-conditioning outputs that tracking past `last_frame` no longer needs.

        Frames in `keep` (memory chosen by a selective policy) keep their spatial memory.
        """
        sign = -1 if reverse else 1
        for frame_idx in list(self._non_cond):
            out = self._non_cond[frame_idx]
            dist = (last_frame - frame_idx) * sign
            if 0 <= dist < self.heavy_window or frame_idx in keep:
                continue
            keep_light = 0 <= dist < self.light_window
            if out.is_light:
                if not keep_light:
                    del self._non_cond[frame_idx]
                continue
            if self.spill is not None:
                self.spill.save(self.key, frame_idx, out)
                self._spilled.add(frame_idx)
            if keep_light:
                self._non_cond[frame_idx] = out.light()
            else:
                del self._non_cond[frame_idx]

    def ram_counts(self) -> tuple[int, int]:
        """(non-conditioning entries with spatial memory in RAM, all non-cond entries in RAM)."""
        heavy = sum(1 for out in self._non_cond.values() if not out.is_light)
        return heavy, len(self._non_cond)

    def clear(self) -> None:
        self.cond.clear()
        self._non_cond.clear()
        if self.spill is not None:
            for frame_idx in self._spilled:
                self.spill.delete(self.key, frame_idx)
        self._spilled.clear()
