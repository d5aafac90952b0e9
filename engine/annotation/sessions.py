"""Interactive model sessions in a worker process, and how one is rebuilt from the saved prompts.

A *session* serves one annotator on one video with one model: a SAM 2 :class:`VideoSession`
(all of the annotator's objects on the video, obj_id = ``Masklet.object_id``, sharing each
frame's backbone features) and image predictors for the per-frame tools (phases 1 and 2).

The session's state is a pure function of its *operation log*: the prompts saved in the drafts
of the video's editable masklets (:mod:`engine.annotation.history`), merged across objects in
the order they were put in force. An operation is

- ``points``: a ``video_click`` / ``video_box`` edit (the frame's full click list and box);
- ``mask``: a mask prompt (``{"mask": true}``, the edit's RLE), what phase 2 propagates from;
- ``propagate``: one pass of a propagation run (start frame, direction, frames yielded), read
  from the run's marker edit (:mod:`engine.annotation.propagation`).

A live session remembers the keys of the operations it applied. Before serving, it compares them
with the log in the database: an extension is applied on top; anything else (an undo, a deleted
or submitted object, a prompt that failed to save) resets the session and replays the whole log.
So a session rebuilt on another worker gives the same masks as the one that was lost.

Replaying is the fallback: after each click and each propagation run the worker saves its
session's state in the shared folder (:mod:`engine.annotation.session_store`), named by a digest
of the log it covers. A session that is behind the log (the propagate worker after the clicks,
the interactive worker after a run, a worker that rebuilds a lost session) first loads the
furthest saved state that matches the log (:mod:`model.session_state`: the exact tensors, so the
same masks) and applies only what follows it. Frame features are shared the same way, once per
model version and video.

Process-local cache: at most ``ANNOTATION_SESSIONS_MAX`` sessions (least recently used closed
first) and none idle for more than ``ANNOTATION_SESSION_IDLE_SECONDS``. The key holds the model's
``config:sha256``, so a newly promoted model never serves another model's cached features.
Locking: one ``threading.Lock`` per session, held while it is synced and used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from engine.masks.rle import decode_rle
from engine.models import DraftEdit, Job, Masklet, Video

from . import history, phases
from .session_store import FeatureFolder, StateFolder, log_digests, state_root

if TYPE_CHECKING:
    from engine.inference.registry import LoadedModel
    from model.image_predictor import ImagePredictor
    from model.video_predictor import VideoSession

logger = logging.getLogger(__name__)

EDITABLE = (Masklet.Status.DRAFT, Masklet.Status.NEEDS_FIX)
_POINT_TOOLS = (phases.VIDEO_CLICK, phases.VIDEO_BOX)
OpKey = tuple[Any, ...]


@dataclass(frozen=True)
class Op:
    """One session operation; ``key`` identifies it (and its content) in the log."""

    key: OpKey
    kind: str  # "points" | "mask" | "propagate"
    obj_id: int
    frame_index: int
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: dict[str, Any] | None = None
    reverse: bool = False
    count: int = 0


def run_passes(run: dict[str, Any]) -> list[tuple[bool, int]]:
    """``(reverse, frames yielded)`` of each pass a run's marker records, in order."""
    return [(bool(p[0]), int(p[1])) for p in run.get("passes", [])]


def row_ops(obj_id: int, row: DraftEdit, skip_job: int | None = None) -> list[Op]:
    """The operations one saved edit stands for (none for edits without a model prompt)."""
    prompt = row.prompt
    if not isinstance(prompt, dict):
        return []
    run = prompt.get("run")
    if isinstance(run, dict) and skip_job is not None and run.get("job") == skip_job:
        return []  # the run being redone by this job (a new attempt) replaces its own output
    ops: list[Op] = []
    frame = row.frame_index
    if row.tool in _POINT_TOOLS:
        box = prompt.get("box")
        ops.append(
            Op(
                key=(row.pk, "points"),
                kind="points",
                obj_id=obj_id,
                frame_index=frame,
                points=tuple((float(x), float(y)) for x, y in prompt.get("points") or ()),
                labels=tuple(int(v) for v in prompt.get("labels") or ()),
                box=None
                if box is None
                else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            )
        )
    elif prompt.get("mask") and row.rle is not None:
        ops.append(Op((row.pk, "mask"), "mask", obj_id, frame, mask=row.rle))
    if isinstance(run, dict):
        start = int(run["start"])
        for n, (reverse, count) in enumerate(run_passes(run)):
            key = (row.pk, "propagate", n, reverse, count)
            ops.append(Op(key, "propagate", obj_id, start, reverse=reverse, count=count))
    return ops


def session_ops(video: Video, *, skip_job: int | None = None) -> list[Op]:
    """The operation log of the annotator's session on ``video``: every editable masklet's
    prompts in force, ordered by when their save was put in force (a redo re-applies a save
    at the redo's place), then by row. ``skip_job``: leave out that propagation job's run.

    Two queries whatever the number of objects; the masks of rows are not read (a propagated
    frame's RLE is no prompt), except those of mask prompts (one more query if any)."""
    objects = dict(
        Masklet.objects.filter(video=video, status__in=EDITABLE).values_list("pk", "object_id")
    )
    rows = (
        DraftEdit.objects.filter(masklet_id__in=list(objects), revision__isnull=True)
        .order_by("masklet_id", "seq")
        .defer("rle")
    )
    by_masklet: dict[int, list[DraftEdit]] = {}
    for row in rows:
        by_masklet.setdefault(row.masklet_id, []).append(row)
    entries: list[tuple[tuple[int, int], int, DraftEdit]] = []
    for masklet_id, edits in by_masklet.items():
        stacks = history.undo_stacks(edits)
        grouped = history.batches(edits)
        for version in stacks.done:
            placed = grouped[version][0].pk
            for row in grouped[stacks.origin[version]]:
                entries.append(((placed, row.pk), objects[masklet_id], row))
    entries.sort(key=lambda entry: entry[0])
    masks = [row.pk for _, _, row in entries if _is_mask_prompt(row)]
    if masks:
        rles = dict(DraftEdit.objects.filter(pk__in=masks).values_list("pk", "rle"))
        for _, _, row in entries:
            if row.pk in rles:
                row.rle = rles[row.pk]
    ops: list[Op] = []
    for _, obj_id, row in entries:
        ops.extend(row_ops(obj_id, row, skip_job))
    return ops


def _is_mask_prompt(row: DraftEdit) -> bool:
    return isinstance(row.prompt, dict) and bool(row.prompt.get("mask"))


def log_fingerprint(video: Video) -> tuple[Any, ...]:
    """What changes whenever the video's operation log can have changed: every masklet's
    status and draft version (each save, undo, redo, submit and propagation start moves the
    version: it is the draft's concurrency token), and whether a propagation of the video is
    queued or running (a run adds frames to its marker without a new version)."""
    masklets = tuple(
        Masklet.objects.filter(video=video)
        .order_by("pk")
        .values_list("pk", "status", "draft_version")
    )
    running = Job.objects.filter(
        video=video, kind=Job.Kind.PROPAGATE, status__in=(Job.Status.QUEUED, Job.Status.RUNNING)
    ).exists()
    return masklets, running


def apply_op(video_session: VideoSession, op: Op) -> None:
    """Apply one operation to a SAM 2 video session (what the live session did)."""
    if op.kind == "points":
        video_session.add_points(
            op.frame_index,
            op.obj_id,
            np.asarray(op.points, dtype=np.float32).reshape(-1, 2) if op.points else None,
            np.asarray(op.labels, dtype=np.int32) if op.points else None,
            box=None if op.box is None else np.asarray(op.box, dtype=np.float32),
        )
    elif op.kind == "mask":
        assert op.mask is not None
        video_session.add_mask(op.frame_index, op.obj_id, decode_rle(op.mask))
    elif op.kind == "propagate":
        # propagate() encodes pending memories before the first frame: a pass that yielded
        # nothing still changed the session, so it is called even for count 0.
        frames = video_session.propagate(start_frame_idx=op.frame_index, reverse=op.reverse)
        if op.count > 0:
            for done, _ in enumerate(frames, start=1):
                if done >= op.count:
                    break
        frames.close()
    else:  # pragma: no cover - keys come from row_ops
        raise ValueError(f"unknown session operation {op.kind!r}")


@dataclass
class LiveSession:
    """A session in this process. ``applied`` is None when it must be rebuilt.

    ``states``: where this session's states are shared with other workers (None: nowhere);
    ``replays`` counts resets that replay the log from the start, ``loads`` the saved states
    loaded instead of re-running the model."""

    model_key: str
    video_id: int
    video: VideoSession
    images: OrderedDict[int, ImagePredictor] = field(default_factory=OrderedDict)
    # (masklet id, frame) -> (the frame's clicks (x, y, label), low-res logits (1, S/4, S/4))
    image_logits: OrderedDict[tuple[int, int], tuple[tuple[Any, ...], np.ndarray]] = field(
        default_factory=OrderedDict
    )
    applied: list[OpKey] | None = field(default_factory=list)
    last_used: float = field(default_factory=time.monotonic)
    replays: int = 0
    loads: int = 0
    states: StateFolder | None = None
    closed: bool = False
    # the log last synced (aligned with ``applied``) and the database's fingerprint then
    log: list[Op] | None = None
    fingerprint: tuple[Any, ...] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sync(self, ops: Iterable[Op]) -> None:
        """Bring the session to the log ``ops``: load the furthest saved state of this log that
        is ahead of the session, then apply what is still new (or reset and replay all)."""
        ops = list(ops)
        keys = [op.key for op in ops]
        self.log, self.fingerprint = None, None
        applied = self.applied
        fits = applied is not None and keys[: len(applied)] == applied
        done = len(applied) if fits and applied is not None else 0
        if self.states is not None and len(ops) > done:
            found = self.states.best(log_digests(ops), after=done)
            if found is not None and self._load_state(found[1]):
                self.applied = applied = list(keys[: found[0]])
                fits = True
        if not fits or applied is None:
            self.video.reset()
            self.applied = applied = []
            self.replays += 1
        for op in ops[len(applied) :]:
            try:
                apply_op(self.video, op)
            except BaseException:
                self.applied = None
                raise
            applied.append(op.key)
        self.log = ops

    def current_log(self, video: Video) -> list[Op]:
        """Sync with the video's log and return it. The log is not read again while the
        database's :func:`log_fingerprint` is the one of the last sync (a click's own save
        updates it: :meth:`extended`)."""
        fingerprint = log_fingerprint(video)
        log = self.log
        if (
            fingerprint == self.fingerprint
            and log is not None
            and self.applied == [op.key for op in log]
        ):
            return list(log)
        ops = session_ops(video)
        self.sync(ops)
        self.fingerprint = fingerprint
        return ops

    def extended(self, ops: list[Op], masklet_id: int, old: int, new: int) -> None:
        """The session applied ``ops`` (the log plus its click, saved as version ``new`` of
        ``masklet_id``, which was at ``old``): the fingerprint moves with that save only."""
        fingerprint = self.fingerprint
        self.log, self.fingerprint = list(ops), None
        if fingerprint is None or self.applied != [op.key for op in ops]:
            return
        masklets, running = fingerprint
        moved = tuple(
            (pk, status, new if pk == masklet_id and version == old else version)
            for pk, status, version in masklets
        )
        if moved != masklets:
            self.fingerprint = (moved, running)

    def _load_state(self, folder: Path) -> bool:
        from model.session_state import StateError, import_state

        try:
            import_state(self.video, folder)
        except (OSError, StateError, RuntimeError, KeyError, ValueError):
            # removed meanwhile (pruned), or unreadable: the log is replayed instead
            logger.warning("could not load the session state %s", folder, exc_info=True)
            self.applied = None
            return False
        self.loads += 1
        return True

    def save_state(self, ops: list[Op]) -> None:
        """Share this session's state as the state after ``ops`` (caller holds ``lock``)."""
        if self.states is None or self.closed or self.applied != [op.key for op in ops]:
            return
        try:
            self.states.save(self.video, log_digests(ops))
        except Exception:  # best effort: another worker replays instead
            logger.warning("could not save the session state", exc_info=True)

    def save_state_later(self, ops: list[Op]) -> None:
        """:meth:`save_state` in this process's saver thread (off the click's critical path);
        skipped if the session has moved on by then."""
        if self.states is None:
            return
        if not getattr(settings, "ANNOTATION_STATE_SAVE_ASYNC", True):
            with self.lock:
                self.save_state(ops)
            return

        def save() -> None:
            with self.lock:
                self.save_state(ops)

        _saver().submit(save)

    def remember_image_logits(
        self, key: tuple[int, int], clicks: tuple[Any, ...], logits: np.ndarray
    ) -> None:
        """The last image click's logits on a frame for an object (LRU-bounded)."""
        self.image_logits[key] = (clicks, logits)
        self.image_logits.move_to_end(key)
        while len(self.image_logits) > feature_frames():
            self.image_logits.popitem(last=False)

    def image_predictor(self, frame_index: int, loaded: LoadedModel) -> ImagePredictor:
        """The frame's embedded image predictor (features cached per frame, LRU-bounded)."""
        from model.image_predictor import ImagePredictor

        predictor = self.images.get(frame_index)
        if predictor is None:
            predictor = ImagePredictor(loaded.model)
            predictor.set_image(self.video.frames.read(frame_index))
            self.images[frame_index] = predictor
            while len(self.images) > feature_frames():
                self.images.popitem(last=False)
        else:
            self.images.move_to_end(frame_index)
        return predictor

    def embed_frame(self, frame_index: int) -> None:
        """Compute and cache a frame's backbone features in the video session (warm-up)."""
        import torch

        with torch.inference_mode():
            self.video._frame_features(frame_index, 1)

    def close(self) -> None:
        with self.lock:  # a state being saved is finished first
            self.closed = True
            self.applied = None
            self.images.clear()
            self.image_logits.clear()
            self.video.close()


def feature_frames() -> int:
    return max(1, int(getattr(settings, "ANNOTATION_FEATURE_FRAMES", 8)))


def model_key(loaded: LoadedModel) -> str:
    return f"{loaded.spec.config}:{loaded.spec.sha256}"


class SessionCache:
    """Sessions of this process by ``(video, user, model key)``; see the module docstring."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[tuple[int, int, str], LiveSession] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_create(self, video: Video, user_id: int, loaded: LoadedModel) -> LiveSession:
        key = (video.pk, user_id, model_key(loaded))
        with self._lock:
            self._evict_idle()
            live = self._sessions.get(key)
            if live is None:
                live = _new_live_session(video, user_id, loaded)
                self._sessions[key] = live
            self._sessions.move_to_end(key)
            live.last_used = time.monotonic()
            limit = max(1, int(getattr(settings, "ANNOTATION_SESSIONS_MAX", 4)))
            while len(self._sessions) > limit:
                _, old = self._sessions.popitem(last=False)
                old.close()
            return live

    def _evict_idle(self) -> None:
        idle = float(getattr(settings, "ANNOTATION_SESSION_IDLE_SECONDS", 1800))
        now = time.monotonic()
        for key in [k for k, s in self._sessions.items() if now - s.last_used > idle]:
            self._sessions.pop(key).close()

    def keys(self) -> list[tuple[int, int, str]]:
        with self._lock:
            return list(self._sessions)

    def clear(self) -> None:
        """Close every session (tests; a worker that lost its sessions)."""
        with self._lock:
            for live in self._sessions.values():
                live.close()
            self._sessions.clear()


def _new_video_session(video: Video, loaded: LoadedModel) -> VideoSession:
    """A SAM 2 session on the video, its spill files in the state folder (so that saved states
    hard-link them instead of copying)."""
    from engine.videos.frames import storage_frame_source
    from model.video_predictor import VideoPredictor

    root = state_root()
    spill: dict[str, Any] = {}
    if root is not None:
        (root / "spill").mkdir(parents=True, exist_ok=True)
        spill["spill_dir"] = str(root / "spill")
    predictor = VideoPredictor(
        loaded.model,
        apply_postprocessing=True,
        feature_cache_size=feature_frames(),
        memory_policy=video.project.memory_policy,  # the project's setting ("all": official)
        **spill,
    )
    return predictor.start_session(storage_frame_source(video))


def _new_live_session(video: Video, user_id: int, loaded: LoadedModel) -> LiveSession:
    session = _new_video_session(video, loaded)
    session.feature_store = FeatureFolder.for_video(
        video, model_key(loaded), int(loaded.model.image_size)
    )
    states = StateFolder.for_session(video, user_id, model_key(loaded), session.options)
    return LiveSession(model_key(loaded), video.pk, session, states=states)


_SAVER: ThreadPoolExecutor | None = None
_SAVER_LOCK = threading.Lock()


def _saver() -> ThreadPoolExecutor:
    global _SAVER
    with _SAVER_LOCK:
        if _SAVER is None:
            _SAVER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-state")
        return _SAVER


def wait_for_saved_states() -> None:
    """Block until the states queued for saving are written (tests, benchmarks)."""
    _saver().submit(lambda: None).result()


#: This process's sessions.
CACHE = SessionCache()
