"""Video sessions: prompts on any frame, propagation as a cancellable generator, bounded memory.

The algorithm is the official `SAM2VideoPredictor`'s (per-object memories, prompts on untracked
frames become conditioning frames, corrections on tracked frames, memory encoding deferred to the
start of propagation), driven through the `SAM2Base` method API (`forward_image`,
`_prepare_backbone_features`, `track_step`, `_encode_new_memory`, ...). Differences, all of which
leave the per-object results unchanged:

* Frames are read lazily from a `FrameSource`; backbone features live in a size-bounded LRU and the
  (frame-independent) positional encodings are stored once.
* At each frame the backbone runs once, and memory attention, the mask decoder and the memory
  encoder run batched over all objects whose memory layout agrees (same conditioning frames, same
  stored neighbour frames); other objects form their own groups.
* The memory bank keeps conditioning frames and a sliding window of recent frames in RAM; older
  outputs are spilled to disk (default) or dropped (see `model._memory`).
* Memories are cast back to the compute dtype before use, so fp32 CPU runs never hit the official
  "BFloat16 and Float" crash; the values are the same bf16-rounded ones the official code uses.
* Hole filling (`fill_hole_area`) runs on CPU via scipy instead of being skipped.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import OrderedDict
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from model._memory import FrameOutput, MemoryBank, SpillStore
from model._prompts import (
    ArrayLike,
    InvalidPromptError,
    NoPromptsError,
    UnknownObjectError,
    check_frame_index,
    check_mask,
    check_obj_id,
    check_points,
)
from model.frames import FrameSource
from model.gpu import compile_model, release_cuda_memory
from model.memory_policy import MemoryPolicy, select_memory_frames
from model.postprocess import fill_holes_in_mask_scores
from model.preprocess import frame_to_tensor

NO_OBJ_SCORE = -1024.0
"""Logit given to objects that have no output on a frame (official `NO_OBJ_SCORE`)."""

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class FeatureStore(Protocol):
    """Frame features shared beyond one session (e.g. a folder that several processes use).

    `load` returns a frame's `backbone_fpn` levels (as `forward_image` gives them, batch 1) or
    None; `save` stores them. `load_pos` / `save_pos` hold the positional encodings (the same for
    every frame of a model and image size)."""

    def load(self, frame_idx: int) -> list[torch.Tensor] | None: ...

    def save(self, frame_idx: int, fpn: list[torch.Tensor]) -> None: ...

    def load_pos(self) -> list[torch.Tensor] | None: ...

    def save_pos(self, pos: list[torch.Tensor]) -> None: ...


class _AtomicSpillStore(SpillStore):
    """A spill store whose files are replaced, never rewritten in place: a hard link to one
    (a saved session state, `model.session_state`) keeps the content it had."""

    def save(self, bank_key: str, frame_idx: int, out: FrameOutput) -> None:
        path = self._path(bank_key, frame_idx)
        partial = path.with_name(path.name + ".part")
        tensors = {
            "obj_ptr": out.obj_ptr,
            "object_score_logits": out.object_score_logits,
            "pred_masks": out.pred_masks,
            "maskmem_features": out.maskmem_features,
        }
        torch.save({k: v.cpu() if v is not None else None for k, v in tensors.items()}, partial)
        partial.replace(path)


class CancelFlag(Protocol):
    """Anything with `is_set()`, e.g. `threading.Event`; checked between frames."""

    def is_set(self) -> bool: ...


class FrameResult(NamedTuple):
    """Masks of all objects on one frame.

    Attributes:
        frame_idx: the frame.
        obj_ids: object ids, in the order objects were first prompted.
        logits: float32 (num_objs, 1, H, W) mask logits at video resolution, on CPU; > 0 is
            foreground; objects without output on this frame hold -1024.
    """

    frame_idx: int
    obj_ids: list[int]
    logits: torch.Tensor


@dataclass(frozen=True)
class SessionOptions:
    """Session behaviour. Defaults equal the official `build_sam2_video_predictor` settings.

    Attributes:
        fill_hole_area: fill background holes up to this area (low-res pixels); 0 disables.
        non_overlap_masks: keep only the highest-scoring object per pixel in the outputs.
        dtype: "float32" or "bfloat16" (autocast; on CPU and CUDA).
        feature_cache_size: how many frames' backbone features are kept (LRU).
        spill_evicted: write evicted memory-bank entries to disk (exact corrections on any frame
            later) instead of dropping them.
        spill_dir: parent folder of the spill directory (default: the system temp folder).
        keep_unchanged_objects: propagation re-tracks an object on a frame only if its prompts
            changed since it was last tracked there; other objects keep their stored outputs
            (a correction of one object leaves the others as they were). False (official):
            every propagation re-tracks every object, so an earlier forward result of an
            untouched object is replaced by a reverse one, for instance.
        corrections_as_cond: a prompt on a frame an object was already tracked on makes it a
            conditioning frame (kept in memory for the whole video, as the official
            `add_all_frames_to_correct_as_cond`); None takes the model's flag (False in SAM 2.1).
        memory_policy: which tracked frames serve as spatial memory (`model.memory_policy`);
            the default is the official choice (the nearest frames), a name is accepted.
    """

    fill_hole_area: int = 8
    non_overlap_masks: bool = False
    dtype: str = "float32"
    feature_cache_size: int = 4
    spill_evicted: bool = True
    spill_dir: str | None = None
    keep_unchanged_objects: bool = False
    corrections_as_cond: bool | None = None
    memory_policy: MemoryPolicy = field(default_factory=MemoryPolicy)

    def __post_init__(self) -> None:
        if isinstance(self.memory_policy, str):
            object.__setattr__(self, "memory_policy", MemoryPolicy(name=self.memory_policy))
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.feature_cache_size < 1:
            raise ValueError("feature_cache_size must be at least 1")
        if self.fill_hole_area < 0:
            raise ValueError("fill_hole_area must be >= 0")


def configure_postprocessing(model: Any, apply_postprocessing: bool) -> None:
    """Set the model flags the official video builder sets for `apply_postprocessing`.

    Dynamic multimask fallback (stability delta 0.05, threshold 0.98) and binarised masks of
    prompted frames in the memory encoder.
    """
    decoder = model.sam_mask_decoder
    decoder.dynamic_multimask_via_stability = apply_postprocessing
    decoder.dynamic_multimask_stability_delta = 0.05
    decoder.dynamic_multimask_stability_thresh = 0.98
    model.binarize_mask_from_pts_for_mem_enc = apply_postprocessing


@dataclass
class ObjectState:
    """Prompts, pending outputs, memory and tracking marks of one object."""

    obj_id: int
    memory: MemoryBank
    point_inputs: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    mask_inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    # outputs of prompts since the last propagation, without spatial memory yet
    pending_cond: dict[int, FrameOutput] = field(default_factory=dict)
    pending_non_cond: dict[int, FrameOutput] = field(default_factory=dict)
    # frame -> whether it was tracked in reverse
    tracked: dict[int, bool] = field(default_factory=dict)
    # frames tracked since the object's prompts last changed (their stored outputs are current)
    current: set[int] = field(default_factory=set)
    # frame -> whether its tracked output may serve as memory (selective memory policies only)
    reliable: dict[int, bool] = field(default_factory=dict)

    def pending(self, is_cond: bool) -> dict[int, FrameOutput]:
        return self.pending_cond if is_cond else self.pending_non_cond

    def latest_output(self, frame_idx: int, is_cond: bool) -> FrameOutput | None:
        out = self.pending(is_cond).get(frame_idx)
        return out if out is not None else self.memory.get_any(frame_idx)


class VideoSession:
    """One video being segmented: objects, prompts, memory bank and feature cache.

    Args:
        model: a SAM 2 model with the official `SAM2Base` method API (ours or Meta's), in eval
            mode; flags such as dynamic multimask are taken from it as they are.
        frames: where frames are read from, lazily.
        options: see `SessionOptions`.
    """

    def __init__(
        self, model: Any, frames: FrameSource, options: SessionOptions | None = None
    ) -> None:
        if len(frames) == 0:
            raise ValueError("the frame source has no frames")
        self.model = model
        self.frames = frames
        self.options = options or SessionOptions()
        self.device: torch.device = next(model.parameters()).device
        self.num_frames = len(frames)
        self.video_height = frames.height
        self.video_width = frames.width
        self.image_size: int = int(model.image_size)
        self._objects: OrderedDict[int, ObjectState] = OrderedDict()
        self._features: OrderedDict[int, list[torch.Tensor]] = OrderedDict()
        self._pos_enc: list[torch.Tensor] | None = None
        self._maskmem_pos_enc: list[torch.Tensor] | None = None
        self._spill: SpillStore | None = (
            _AtomicSpillStore(self.options.spill_dir) if self.options.spill_evicted else None
        )
        self._bank_ids = itertools.count()
        stride = max(1, int(getattr(model, "memory_temporal_stride_for_eval", 1)))
        self._heavy_window = max(1, (int(model.num_maskmem) - 1) * stride)
        self._light_window = max(1, int(model.max_obj_ptrs_in_encoder) - 1)
        self.backbone_runs = 0  # number of backbone forward passes (for tests and benchmarks)
        # features beyond this session's LRU: read before the backbone runs, written after
        self.feature_store: FeatureStore | None = None

    # -- public API -------------------------------------------------------------------------
    @property
    def obj_ids(self) -> list[int]:
        """Object ids in the order they were first prompted."""
        return list(self._objects)

    def add_points(
        self,
        frame_idx: int,
        obj_id: int,
        points: ArrayLike | None = None,
        labels: ArrayLike | None = None,
        *,
        box: ArrayLike | None = None,
        clear_old_points: bool = True,
    ) -> FrameResult:
        """Clicks and/or a box (pixel coordinates of the video) for one object on one frame.

        As official `add_new_points_or_box`: a box is prepended as two points labelled 2 and 3;
        by default the frame's earlier clicks of this object are replaced (the previous mask
        logits are still fed back as a mask prompt). Returns all objects' masks on the frame.
        """
        frame_idx = check_frame_index(frame_idx, self.num_frames)
        obj_id = check_obj_id(obj_id)
        pts, labs, box_arr = check_points(points, labels, box, self.video_width, self.video_height)
        if box_arr is not None and not clear_old_points:
            raise InvalidPromptError("a box needs clear_old_points=True (it must come first)")
        coords = torch.tensor(pts, dtype=torch.float32).reshape(1, -1, 2)
        point_labels = torch.tensor(labs, dtype=torch.int32).reshape(1, -1)
        if box_arr is not None:
            box_coords = torch.tensor(box_arr, dtype=torch.float32).reshape(1, 2, 2)
            coords = torch.cat([box_coords, coords], dim=1)
            point_labels = torch.cat([torch.tensor([[2, 3]], dtype=torch.int32), point_labels], 1)
        # same float32 arithmetic as the official predictor: x / W * S, y / H * S
        coords = coords / torch.tensor([self.video_width, self.video_height])
        coords = (coords * self.image_size).to(self.device)
        point_labels = point_labels.to(self.device)

        with self._compute():
            obj = self._get_or_add_object(obj_id)
            old = obj.point_inputs.get(frame_idx) if not clear_old_points else None
            if old is not None:
                coords = torch.cat([old["point_coords"], coords], dim=1)
                point_labels = torch.cat([old["point_labels"], point_labels], dim=1)
            point_inputs = {"point_coords": coords, "point_labels": point_labels}
            obj.point_inputs[frame_idx] = point_inputs
            obj.mask_inputs.pop(frame_idx, None)
            obj.current.clear()
            is_cond = self._is_cond_prompt(obj, frame_idx)
            reverse = obj.tracked.get(frame_idx, False)
            prev = obj.latest_output(frame_idx, is_cond)
            prev_logits = None
            if prev is not None and prev.pred_masks is not None:
                prev_logits = torch.clamp(prev.pred_masks.to(self.device), -32.0, 32.0)
            (out,) = self._track(
                frame_idx,
                [obj],
                is_init_cond_frame=is_cond,
                point_inputs=point_inputs,
                mask_inputs=None,
                reverse=reverse,
                run_mem_encoder=False,
                prev_sam_mask_logits=prev_logits,
            )
            obj.pending(is_cond)[frame_idx] = out
            return self._frame_result(frame_idx, is_cond)

    def add_box(self, frame_idx: int, obj_id: int, box: ArrayLike) -> FrameResult:
        """A box [x0, y0, x1, y1] (pixel coordinates) for one object on one frame."""
        return self.add_points(frame_idx, obj_id, box=box)

    def add_mask(self, frame_idx: int, obj_id: int, mask: ArrayLike) -> FrameResult:
        """A binary mask (H, W) at video resolution for one object on one frame.

        As official `add_new_mask`: the mask replaces the frame's clicks for this object and is
        used as the output itself (logits +-10), resized to the model size with antialiasing.
        """
        return self.add_masks(frame_idx, {obj_id: mask})

    def add_masks(self, frame_idx: int, masks: Mapping[int, ArrayLike]) -> FrameResult:
        """`add_mask` for several objects on one frame, with one `FrameResult` at the end.

        Seeding N objects one `add_mask` at a time builds N results of 1..N objects at video
        resolution (N^2 / 2 frame-sized logit maps); this builds one of N.
        """
        frame_idx = check_frame_index(frame_idx, self.num_frames)
        checked = [
            (check_obj_id(obj_id), check_mask(mask, self.video_width, self.video_height))
            for obj_id, mask in masks.items()
        ]
        if not checked:
            raise InvalidPromptError("no masks given")
        kinds = {obj_id: self._apply_mask(frame_idx, obj_id, binary) for obj_id, binary in checked}
        with self._compute():
            last = kinds[checked[-1][0]]
            result = self._frame_result(frame_idx, last)
            if len(set(kinds.values())) > 1:
                # objects prompted on an untracked frame and corrections on a tracked one: each
                # shows its new output (as if it had been prompted last)
                other = self._frame_result(frame_idx, not last)
                for row, obj_id in enumerate(result.obj_ids):
                    if kinds.get(obj_id, last) != last:
                        result.logits[row] = other.logits[row]
            return result

    def _apply_mask(self, frame_idx: int, obj_id: int, binary: np.ndarray) -> bool:
        """Store one object's mask prompt and its output; returns whether the frame is a
        conditioning frame for it."""
        with self._compute():
            mask_t = torch.from_numpy(binary)[None, None].float().to(self.device)
            size = (self.image_size, self.image_size)
            if tuple(mask_t.shape[-2:]) != size:
                mask_t = F.interpolate(
                    mask_t, size=size, mode="bilinear", align_corners=False, antialias=True
                )
                mask_t = (mask_t >= 0.5).float()
            obj = self._get_or_add_object(obj_id)
            obj.mask_inputs[frame_idx] = mask_t
            obj.point_inputs.pop(frame_idx, None)
            obj.current.clear()
            is_cond = self._is_cond_prompt(obj, frame_idx)
            reverse = obj.tracked.get(frame_idx, False)
            (out,) = self._track(
                frame_idx,
                [obj],
                is_init_cond_frame=is_cond,
                point_inputs=None,
                mask_inputs=mask_t,
                reverse=reverse,
                run_mem_encoder=False,
            )
            obj.pending(is_cond)[frame_idx] = out
            return is_cond

    def prepare_correction(self, frame_idx: int, obj_id: int) -> bool:
        """Run now the memory attention a click of `obj_id` on tracked frame `frame_idx` needs.

        A correction on a tracked frame fuses the frame's features with the object's memory bank
        (seconds on CPU at 1024 px); the prompts do not enter that step, so it can run before the
        click, while the annotator looks at the frame. The result lands in the model's memo
        (`model.memo`), where the click's equal inputs find it as long as nothing changed the
        bank in between; nothing in the session changes. Returns whether it ran: False for an
        unknown object, a frame the object was not tracked on, a correction that would be a
        conditioning frame (no memory), or a model without the memo (Meta's).
        """
        frame_idx = check_frame_index(frame_idx, self.num_frames)
        obj = self._objects.get(check_obj_id(obj_id))
        if obj is None or getattr(self.model, "memory_memo", None) is None:
            return False
        if self._is_cond_prompt(obj, frame_idx):
            return False
        reverse = obj.tracked.get(frame_idx, False)
        with self._compute():
            feats, pos, sizes = self._frame_features(frame_idx, 1)
            # as `track_step` calls it for add_points' correction (same layout, same inputs)
            self.model._prepare_memory_conditioned_features(
                frame_idx=frame_idx,
                is_init_cond_frame=False,
                current_vision_feats=feats[-1:],
                current_vision_pos_embeds=pos[-1:],
                feat_sizes=sizes[-1:],
                output_dict=self._memory_dict([obj], frame_idx, reverse),
                num_frames=self.num_frames,
                track_in_reverse=reverse,
            )
        return True

    def propagate(
        self,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
        cancel: CancelFlag | None = None,
    ) -> Generator[FrameResult, None, None]:
        """Track all objects through the video, one `FrameResult` per frame.

        Input errors (no prompts, bad start frame) raise here, before the generator is returned.
        Stop early by closing the generator, breaking out of the loop, or setting `cancel`; the
        session stays consistent (every yielded frame is fully stored) and can be resumed.
        As the official predictor: the default start is the earliest conditioning frame; reverse
        propagation from frame 0 yields nothing.
        """
        if start_frame_idx is not None:
            start_frame_idx = check_frame_index(start_frame_idx, self.num_frames)
        if max_frame_num_to_track is not None and max_frame_num_to_track < 0:
            raise InvalidPromptError("max_frame_num_to_track must be >= 0")
        self._check_ready_to_propagate()
        with self._compute():
            self._encode_pending_memories()
        if start_frame_idx is None:
            start_frame_idx = min(t for o in self._objects.values() for t in o.memory.cond)
        span = self.num_frames if max_frame_num_to_track is None else max_frame_num_to_track
        if reverse:
            end = max(start_frame_idx - span, 0)
            order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else range(0)
        else:
            end = min(start_frame_idx + span, self.num_frames - 1)
            order = range(start_frame_idx, end + 1)
        return self._propagation(list(order), reverse, cancel)

    def propagate_both_ways(
        self, frame_idx: int, cancel: CancelFlag | None = None
    ) -> Generator[FrameResult, None, None]:
        """Re-propagation around a correction: forward from `frame_idx` to the last frame, then
        backward from `frame_idx - 1` to frame 0 (each frame once).

        With `corrections_as_cond` the corrected frame is a conditioning frame, so both passes
        follow it; with `keep_unchanged_objects` only the corrected objects are re-tracked.
        Input errors raise here, before the generator is returned.
        """
        forward = self.propagate(frame_idx, cancel=cancel)

        def passes() -> Generator[FrameResult, None, None]:
            yield from forward
            if frame_idx > 0 and not (cancel is not None and cancel.is_set()):
                yield from self._propagation(list(range(frame_idx - 1, -1, -1)), True, cancel)

        return passes()

    def clear_prompts_in_frame(self, frame_idx: int, obj_id: int) -> FrameResult:
        """Remove one object's clicks/mask on a frame (official `clear_all_prompts_in_frame`).

        A conditioning output there becomes an ordinary tracked output and the frame counts as
        untracked again for that object.
        """
        frame_idx = check_frame_index(frame_idx, self.num_frames)
        obj = self._require_object(obj_id)
        with self._compute():
            self._clear_prompts(obj, frame_idx)
            is_cond = any(frame_idx in o.pending_cond for o in self._objects.values())
            return self._frame_result(frame_idx, is_cond)

    def remove_object(self, obj_id: int) -> list[FrameResult]:
        """Forget an object; returns updated masks on the frames where it had prompts."""
        obj = self._require_object(obj_id)
        if len(self._objects) == 1:
            self.reset()
            return []
        frames = sorted(set(obj.point_inputs) | set(obj.mask_inputs))
        with self._compute():
            for frame_idx in frames:
                self._clear_prompts(obj, frame_idx)
            obj.memory.clear()
            del self._objects[obj.obj_id]
            results = []
            for frame_idx in frames:
                is_cond = any(frame_idx in o.pending_cond for o in self._objects.values())
                results.append(self._frame_result(frame_idx, is_cond))
        return results

    def reset(self) -> None:
        """Remove all objects, prompts and results; cached frame features are kept."""
        for obj in self._objects.values():
            obj.memory.clear()
        self._objects.clear()

    def close(self) -> None:
        """Release the feature cache, memory bank and spill files (and, on CUDA, the cached
        blocks they freed, so a closed session gives its GPU memory back)."""
        self.reset()
        self._features.clear()
        self._pos_enc = None
        self._maskmem_pos_enc = None
        if self._spill is not None:
            self._spill.close()
        memo = getattr(self.model, "memory_memo", None)  # Meta's model has none
        if memo is not None:
            memo.clear()  # it holds the last frame's features and memories
        release_cuda_memory(self.device)

    def __enter__(self) -> VideoSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def memory_stats(self) -> dict[str, Any]:
        """What is held in RAM: per object (cond frames, non-cond with memory, non-cond total)."""
        per_obj = {}
        for obj_id, obj in self._objects.items():
            heavy, total = obj.memory.ram_counts()
            per_obj[obj_id] = {
                "cond_frames": len(obj.memory.cond),
                "non_cond_with_memory": heavy,
                "non_cond_in_ram": total,
                "pending": len(obj.pending_cond) + len(obj.pending_non_cond),
            }
        return {
            "objects": per_obj,
            "cached_feature_frames": list(self._features),
            "heavy_window": self._heavy_window,
            "light_window": self._light_window,
        }

    # -- internals ----------------------------------------------------------------------------
    def _compute(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.options.dtype == "bfloat16":
            stack.enter_context(torch.autocast(self.device.type, dtype=torch.bfloat16))
        return stack

    def _get_or_add_object(self, obj_id: int) -> ObjectState:
        obj = self._objects.get(obj_id)
        if obj is None:
            bank = MemoryBank(
                key=f"b{next(self._bank_ids)}",
                heavy_window=self._heavy_window,
                light_window=self._light_window,
                spill=self._spill,
                device=self.device,
            )
            obj = ObjectState(obj_id=obj_id, memory=bank)
            self._objects[obj_id] = obj
        return obj

    def _is_cond_prompt(self, obj: ObjectState, frame_idx: int) -> bool:
        """Prompts on untracked frames are conditioning; corrections on tracked frames are
        too when `corrections_as_cond` (official `add_all_frames_to_correct_as_cond`)."""
        if frame_idx not in obj.tracked:
            return True
        as_cond = self.options.corrections_as_cond
        if as_cond is None:
            as_cond = bool(getattr(self.model, "add_all_frames_to_correct_as_cond", False))
        return as_cond

    def _require_object(self, obj_id: int) -> ObjectState:
        obj_id = check_obj_id(obj_id)
        obj = self._objects.get(obj_id)
        if obj is None:
            raise UnknownObjectError(
                f"unknown object id {obj_id}; known ids: {list(self._objects)}"
            )
        return obj

    def _frame_features(
        self, frame_idx: int, batch: int
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
        """Flattened backbone features of a frame, expanded to `batch` objects.

        Returns (vision_feats, vision_pos_embeds, feat_sizes) as `_prepare_backbone_features`
        gives them: lists over levels of (HW, B, C) tensors and (H, W) sizes.
        """
        fpn = self._features.get(frame_idx)
        if fpn is None:
            store = self.feature_store
            fpn = self._stored_features(frame_idx) if store is not None else None
            if fpn is None:
                image = frame_to_tensor(self.frames.read(frame_idx), self.image_size)
                out = self.model.forward_image(image.to(self.device)[None])
                self.backbone_runs += 1
                fpn = list(out["backbone_fpn"])
                if self._pos_enc is None:
                    # sine encodings depend only on the shapes: one copy serves every frame
                    self._pos_enc = list(out["vision_pos_enc"])
                if store is not None:
                    store.save(frame_idx, fpn)
                    store.save_pos(self._pos_enc)
            self._features[frame_idx] = fpn
            while len(self._features) > self.options.feature_cache_size:
                self._features.popitem(last=False)
        else:
            self._features.move_to_end(frame_idx)
        assert self._pos_enc is not None
        expanded = {
            "backbone_fpn": [x.expand(batch, -1, -1, -1) for x in fpn],
            "vision_pos_enc": [x.expand(batch, -1, -1, -1) for x in self._pos_enc],
        }
        _, feats, pos, sizes = self.model._prepare_backbone_features(expanded)
        return feats, pos, sizes

    def _stored_features(self, frame_idx: int) -> list[torch.Tensor] | None:
        """A frame's features from `feature_store` (with the positional encodings), or None."""
        assert self.feature_store is not None
        if self._pos_enc is None:
            pos = self.feature_store.load_pos()
            if pos is None:
                return None
            self._pos_enc = [p.to(self.device) for p in pos]
        fpn = self.feature_store.load(frame_idx)
        return None if fpn is None else [x.to(self.device) for x in fpn]

    def _memory_frames(self, frame_idx: int, reverse: bool) -> tuple[list[int], list[int]]:
        """Non-conditioning frames whose spatial memory / object pointer frame_idx may use.

        Mirrors the frame selection of official `_prepare_memory_conditioned_features`.
        """
        num_maskmem = int(self.model.num_maskmem)
        stride = max(1, int(getattr(self.model, "memory_temporal_stride_for_eval", 1)))
        mem_frames = []
        for t_pos in range(1, num_maskmem):
            t_rel = num_maskmem - t_pos
            if t_rel == 1:
                prev = frame_idx + 1 if reverse else frame_idx - 1
            elif not reverse:
                prev = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
            else:
                prev = -(-(frame_idx + 2) // stride) * stride + (t_rel - 2) * stride
            mem_frames.append(prev)
        ptr_frames = []
        if getattr(self.model, "use_obj_ptrs_in_encoder", False):
            max_ptrs = min(self.num_frames, int(self.model.max_obj_ptrs_in_encoder))
            for t_diff in range(1, max_ptrs):
                t = frame_idx + t_diff if reverse else frame_idx - t_diff
                if t < 0 or t >= self.num_frames:
                    break
                ptr_frames.append(t)
        return mem_frames, ptr_frames

    def _layout_key(self, obj: ObjectState, frame_idx: int, reverse: bool) -> tuple[Any, ...]:
        """Objects with equal keys have the same memory layout on this frame and batch together."""
        mem_frames, ptr_frames = self._memory_frames(frame_idx, reverse)
        mem = tuple(sorted(self._spatial_sources(obj, frame_idx, reverse, mem_frames).items()))
        ptr = tuple(t for t in ptr_frames if obj.memory.available(t, heavy=False))
        return tuple(sorted(obj.memory.cond)), mem, ptr

    def _spatial_sources(
        self, obj: ObjectState, frame_idx: int, reverse: bool, mem_frames: list[int]
    ) -> dict[int, int]:
        """Memory slot (the frame the model asks for) -> frame whose spatial memory fills it.

        Officially each slot holds its own frame; a selective memory policy fills the slots,
        nearest first, with the nearest reliable frames (`model.memory_policy`).
        """
        policy = self.options.memory_policy
        if not policy.selective:
            return {t: t for t in mem_frames if obj.memory.available(t, heavy=True)}
        chosen = self._reliable_frames(obj, frame_idx, reverse, len(mem_frames))
        nearest_first = [t for t in reversed(mem_frames) if t >= 0]
        return dict(zip(nearest_first, chosen))

    def _reliable_frames(
        self, obj: ObjectState, frame_idx: int, reverse: bool, slots: int
    ) -> list[int]:
        def usable(t: int) -> bool:
            return t not in obj.memory.cond and obj.memory.available(t, heavy=True)

        policy = self.options.memory_policy
        return select_memory_frames(
            frame_idx, reverse, slots, obj.reliable, usable, policy.max_distance
        )

    def _stack_outputs(self, outs: list[FrameOutput], heavy: bool) -> dict[str, Any]:
        """Concatenate per-object outputs along the batch, in the official output-dict format."""
        batch = len(outs)
        entry: dict[str, Any] = {
            "obj_ptr": torch.cat([o.obj_ptr for o in outs], dim=0),
            "object_score_logits": torch.cat([o.object_score_logits for o in outs], dim=0),
            "maskmem_features": None,
            "maskmem_pos_enc": None,
        }
        if heavy:
            feats = [o.maskmem_features for o in outs]
            assert all(f is not None for f in feats)
            # stored in bf16 like the official predictor; fed back in fp32 (same values, and it
            # avoids the official fp32 "BFloat16 and Float" crash)
            entry["maskmem_features"] = torch.cat(feats, dim=0).float()  # type: ignore[arg-type]
            assert self._maskmem_pos_enc is not None
            entry["maskmem_pos_enc"] = [p.expand(batch, -1, -1, -1) for p in self._maskmem_pos_enc]
        return entry

    def _memory_dict(
        self, objs: list[ObjectState], frame_idx: int, reverse: bool
    ) -> dict[str, dict[int, Any]]:
        """The batched `output_dict` that `track_step` reads memories from."""
        cond = {
            t: self._stack_outputs([o.memory.cond[t] for o in objs], heavy=True)
            for t in sorted(objs[0].memory.cond)
        }
        mem_frames, ptr_frames = self._memory_frames(frame_idx, reverse)
        # the same for every object of the group (it is part of their layout key)
        sources = self._spatial_sources(objs[0], frame_idx, reverse, mem_frames)
        non_cond: dict[int, Any] = {}
        for t in dict.fromkeys(mem_frames + ptr_frames):
            if t in mem_frames and t not in sources:
                continue  # no spatial memory for this slot (and so no pointer either)
            source = sources.get(t, t)
            heavy = t in mem_frames
            outs = [o.memory.get_non_cond(source, heavy=heavy) for o in objs]
            if any(out is None for out in outs):
                continue
            entry = self._stack_outputs(outs, heavy=heavy)  # type: ignore[arg-type]
            if source != t:
                # a selected older frame's spatial memory; the slot's own object pointer stays
                own = [o.memory.get_non_cond(t, heavy=False) for o in objs]
                if all(out is not None for out in own):
                    light = self._stack_outputs(own, heavy=False)  # type: ignore[arg-type]
                    entry["obj_ptr"] = light["obj_ptr"]
                    entry["object_score_logits"] = light["object_score_logits"]
            non_cond[t] = entry
        return {"cond_frame_outputs": cond, "non_cond_frame_outputs": non_cond}

    def _track(
        self,
        frame_idx: int,
        objs: list[ObjectState],
        *,
        is_init_cond_frame: bool,
        point_inputs: dict[str, torch.Tensor] | None,
        mask_inputs: torch.Tensor | None,
        reverse: bool,
        run_mem_encoder: bool,
        prev_sam_mask_logits: torch.Tensor | None = None,
    ) -> list[FrameOutput]:
        """One `track_step` for a batch of objects with the same memory layout on a frame."""
        feats, pos, sizes = self._frame_features(frame_idx, len(objs))
        uses_memory = not is_init_cond_frame and not (
            mask_inputs is not None and self.model.use_mask_input_as_output_without_sam
        )
        if uses_memory:
            output_dict = self._memory_dict(objs, frame_idx, reverse)
        else:
            output_dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        out = self.model.track_step(
            frame_idx=frame_idx,
            is_init_cond_frame=is_init_cond_frame,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=sizes,
            point_inputs=point_inputs,
            mask_inputs=mask_inputs,
            output_dict=output_dict,
            num_frames=self.num_frames,
            track_in_reverse=reverse,
            run_mem_encoder=run_mem_encoder,
            prev_sam_mask_logits=prev_sam_mask_logits,
        )
        pred_masks = out["pred_masks"].float()
        if self.options.fill_hole_area > 0:
            pred_masks = fill_holes_in_mask_scores(pred_masks, self.options.fill_hole_area)
        ious = out.get("iou_predictions")  # absent from Meta's model: taken as confident
        best_iou = None if ious is None else ious.float().max(dim=-1).values
        memory = out["maskmem_features"]
        if memory is not None:
            memory = memory.to(torch.bfloat16)
            self._remember_maskmem_pos_enc(out["maskmem_pos_enc"])
        # clone() per object so that evicting one object's entry frees its memory
        return [
            FrameOutput(
                obj_ptr=out["obj_ptr"][i : i + 1].clone(),
                object_score_logits=out["object_score_logits"][i : i + 1].clone(),
                pred_masks=pred_masks[i : i + 1].clone(),
                maskmem_features=memory[i : i + 1].clone() if memory is not None else None,
                iou=1.0 if best_iou is None else float(best_iou[i]),
            )
            for i in range(len(objs))
        ]

    def _remember_maskmem_pos_enc(self, pos_enc: list[torch.Tensor] | None) -> None:
        if self._maskmem_pos_enc is None and pos_enc is not None:
            self._maskmem_pos_enc = [p[0:1].clone() for p in pos_enc]

    def _frame_result(self, frame_idx: int, is_cond: bool) -> FrameResult:
        """All objects' current masks on a frame (official consolidation at video resolution)."""
        h, w = self.video_height, self.video_width
        logits = torch.full((len(self._objects), 1, h, w), NO_OBJ_SCORE, dtype=torch.float32)
        for i, obj in enumerate(self._objects.values()):
            out = obj.latest_output(frame_idx, is_cond)
            if out is None or out.pred_masks is None:
                continue
            logits[i : i + 1] = self._to_video_res(out.pred_masks)
        if self.options.non_overlap_masks:
            logits = self.model._apply_non_overlapping_constraints(logits)
        return FrameResult(frame_idx, self.obj_ids, logits)

    def _to_video_res(self, low_res: torch.Tensor) -> torch.Tensor:
        size = (self.video_height, self.video_width)
        if tuple(low_res.shape[-2:]) == size:
            return low_res.float().cpu()
        up = F.interpolate(low_res.float(), size=size, mode="bilinear", align_corners=False)
        return up.cpu()

    def _check_ready_to_propagate(self) -> None:
        if not self._objects:
            raise NoPromptsError("no object has prompts; add points, a box or a mask first")
        for obj in self._objects.values():
            if not obj.pending_cond and not obj.memory.cond:
                raise NoPromptsError(
                    f"object {obj.obj_id} has no prompt on an untracked frame; add one first"
                )

    def _encode_pending_memories(self) -> None:
        """Official `propagate_in_video_preflight`: encode memories of prompted frames."""
        size = (self.image_size, self.image_size)
        for obj in self._objects.values():
            for is_cond in (False, True):
                pending = obj.pending(is_cond)
                for frame_idx, out in pending.items():
                    if out.maskmem_features is None:
                        assert out.pred_masks is not None
                        feats, _, sizes = self._frame_features(frame_idx, 1)
                        high_res = F.interpolate(
                            out.pred_masks.to(self.device),
                            size=size,
                            mode="bilinear",
                            align_corners=False,
                        )
                        memory, pos_enc = self.model._encode_new_memory(
                            current_vision_feats=feats,
                            feat_sizes=sizes,
                            pred_masks_high_res=high_res,
                            object_score_logits=out.object_score_logits,
                            is_mask_from_pts=True,
                        )
                        out.maskmem_features = memory.to(torch.bfloat16)
                        self._remember_maskmem_pos_enc(pos_enc)
                    if is_cond:
                        obj.memory.cond[frame_idx] = out
                    else:
                        obj.memory.put_non_cond(frame_idx, out)
                        obj.reliable[frame_idx] = True  # an annotator's correction
                pending.clear()
            for frame_idx in obj.memory.cond:
                obj.memory.discard_non_cond(frame_idx)

    def _propagation(
        self, order: list[int], reverse: bool, cancel: CancelFlag | None
    ) -> Generator[FrameResult, None, None]:
        for frame_idx in order:
            if cancel is not None and cancel.is_set():
                return
            # the compute context is entered per frame, never held across a `yield`
            with self._compute():
                result = self._propagate_frame(frame_idx, reverse)
            yield result

    def _propagate_frame(self, frame_idx: int, reverse: bool) -> FrameResult:
        objs = list(self._objects.values())
        policy = self.options.memory_policy
        low_res: list[torch.Tensor | None] = [None] * len(objs)
        groups: dict[tuple[Any, ...], list[int]] = {}
        reused: set[int] = set()  # objects whose stored output is kept (keep_unchanged_objects)
        for i, obj in enumerate(objs):
            cond_out = obj.memory.cond.get(frame_idx)
            if cond_out is not None:
                low_res[i] = cond_out.pred_masks
                continue
            if self.options.keep_unchanged_objects and frame_idx in obj.current:
                stored = obj.memory.get_non_cond(frame_idx, heavy=True)
                if stored is not None and stored.pred_masks is not None:
                    low_res[i] = stored.pred_masks.to(self.device)
                    reused.add(i)
                    continue
            groups.setdefault(self._layout_key(obj, frame_idx, reverse), []).append(i)
        for members in groups.values():
            outs = self._track(
                frame_idx,
                [objs[i] for i in members],
                is_init_cond_frame=False,
                point_inputs=None,
                mask_inputs=None,
                reverse=reverse,
                run_mem_encoder=True,
            )
            for i, out in zip(members, outs):
                objs[i].memory.put_non_cond(frame_idx, out)
                low_res[i] = out.pred_masks
                if policy.selective:
                    score = float(out.object_score_logits.float().max())
                    objs[i].reliable[frame_idx] = policy.is_reliable(out.iou or 0.0, score)
        for i, obj in enumerate(objs):
            if i not in reused:
                obj.tracked[frame_idx] = reverse
            obj.current.add(frame_idx)
            keep: frozenset[int] = frozenset()
            if policy.selective:
                # what the next frame will read must survive the trim
                step = -1 if reverse else 1
                slots = max(1, int(self.model.num_maskmem) - 1)
                keep = frozenset(self._reliable_frames(obj, frame_idx + step, reverse, slots))
            obj.memory.trim(frame_idx, reverse, keep)
        masks = torch.cat([m for m in low_res if m is not None], dim=0)
        logits = self._to_video_res(masks)
        if self.options.non_overlap_masks:
            logits = self.model._apply_non_overlapping_constraints(logits)
        return FrameResult(frame_idx, self.obj_ids, logits)

    def _clear_prompts(self, obj: ObjectState, frame_idx: int) -> None:
        obj.current.clear()
        obj.point_inputs.pop(frame_idx, None)
        obj.mask_inputs.pop(frame_idx, None)
        obj.pending_cond.pop(frame_idx, None)
        obj.pending_non_cond.pop(frame_idx, None)
        out = obj.memory.cond.pop(frame_idx, None)
        if out is not None:
            obj.memory.put_non_cond(frame_idx, out)
            obj.tracked.pop(frame_idx, None)


class VideoPredictor:
    """Builds video sessions on one model, with the official predictor's default settings.

    Args:
        model: a SAM 2 model with the `SAM2Base` API, in eval mode.
        apply_postprocessing: as official `build_sam2_video_predictor`: dynamic multimask
            fallback, binarised prompted masks in the memory encoder, hole filling (area 8).
            False gives the official evaluation setting.
        dtype: "float32" or "bfloat16" autocast (on CUDA as Meta's scripts run).
        compile: `torch.compile` the image encoder and memory attention (`model.gpu`), as
            Meta's `vos_optimized`; meant for CUDA.
        **session_options: further `SessionOptions` fields (feature_cache_size, ...).
    """

    def __init__(
        self,
        model: Any,
        *,
        apply_postprocessing: bool = True,
        dtype: str = "float32",
        compile: bool = False,
        **session_options: Any,
    ) -> None:
        configure_postprocessing(model, apply_postprocessing)
        if compile:
            compile_model(model)
        session_options.setdefault("fill_hole_area", 8 if apply_postprocessing else 0)
        self.model = model
        self.options = SessionOptions(dtype=dtype, **session_options)

    def start_session(self, frames: FrameSource) -> VideoSession:
        return VideoSession(self.model, frames, self.options)


def build_video_predictor(
    config: str,
    checkpoint: str | Path | None,
    *,
    image_size: int | None = None,
    device: str = "cpu",
    apply_postprocessing: bool = True,
    dtype: str = "float32",
    compile: bool = False,
    **session_options: Any,
) -> VideoPredictor:
    """Our SAM 2 model (`model.build.build_sam2`) wrapped in a `VideoPredictor`."""
    from model.build import build_sam2
    from model.config import get_config

    cfg = get_config(config, image_size=image_size)
    net = build_sam2(cfg, checkpoint, device=device, apply_postprocessing=apply_postprocessing)
    net.eval()
    return VideoPredictor(
        net,
        apply_postprocessing=apply_postprocessing,
        dtype=dtype,
        compile=compile,
        **session_options,
    )


def logits_to_numpy(result: FrameResult) -> np.ndarray:
    """float32 (num_objs, H, W) array of a frame's logits."""
    return result.logits[:, 0].numpy().astype(np.float32, copy=False)


__all__ = [
    "NO_OBJ_SCORE",
    "CancelFlag",
    "FeatureStore",
    "FrameResult",
    "ObjectState",
    "SessionOptions",
    "VideoPredictor",
    "VideoSession",
    "build_video_predictor",
    "configure_postprocessing",
    "logits_to_numpy",
]
