"""What interactive and propagate workers share on disk: frame features and session states.

Both live under ``ANNOTATION_STATE_DIR`` (default ``DATA_DIR/annotation-state``), a folder that
every worker serving the model must see (the same machine, or a shared volume); a worker that
does not see it still serves, by computing (features) and replaying (sessions).

- **Frame features** (:class:`FeatureFolder`): a frame's backbone features per model version
  and video, written by the first worker that computes them and read by every other session on
  that video (another annotator, the propagate worker, a rebuilt session). Bounded in size
  (``ANNOTATION_FEATURE_STORE_MB``; the least recently written frames go first).
- **Session states** (:class:`StateFolder`): after a click or a propagation run, the worker
  writes its session's state (:mod:`model.session_state`) named by the number of operations of
  the log it covers and a digest of them (:func:`log_digests`). A worker whose session is behind
  the log (the propagate worker after the clicks, the interactive worker after a run, a worker
  that rebuilds a lost session) loads the furthest state that matches the log instead of
  re-running the model on every saved prompt: the same state, so the same masks. The newest
  ``KEEP_STATES`` are kept per session (an undo can fall back on an earlier one).

Every file is written under a temporary name and renamed, so a reader sees whole files only; a
state that cannot be read is skipped (the session replays instead).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from django.conf import settings

if TYPE_CHECKING:
    from engine.models import Video
    from model.video_predictor import VideoSession

    from .sessions import Op

logger = logging.getLogger(__name__)

KEEP_STATES = 4
_PRUNE_EVERY = 16


def state_root() -> Path | None:
    """The shared folder, or None when it is switched off (``ANNOTATION_STATE_DIR=""``)."""
    configured = getattr(settings, "ANNOTATION_STATE_DIR", None)
    if configured == "":
        return None
    return Path(configured) if configured else Path(settings.DATA_DIR) / "annotation-state"


def _digest(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def video_identity(video: Video) -> str:
    """The video's primary key and creation time: another database's video with the same key
    (a test run, a restored backup) never shares features or states with it."""
    created = video.created_at.isoformat() if video.created_at else ""
    return f"{video.pk}:{created}"


def log_digests(ops: Sequence[Op]) -> list[str]:
    """``digests[i]``: the digest of the first ``i + 1`` operations (their full content)."""
    digests: list[str] = []
    previous = ""
    for op in ops:
        previous = _digest(previous, op)
        digests.append(previous)
    return digests


def _write_atomically(path: Path, data: Any) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    torch.save(data, partial)
    partial.replace(path)


class FeatureFolder:
    """A :class:`model.video_predictor.FeatureStore` in a folder (one per model and video)."""

    _writes = 0
    _lock = threading.Lock()

    def __init__(self, root: Path, folder: Path, pos: Path) -> None:
        self.root = root
        self.folder = folder
        self.pos = pos  # the positional encodings: one file per model and image size

    @classmethod
    def for_video(cls, video: Video, model_key: str, image_size: int) -> FeatureFolder | None:
        root = state_root()
        if root is None:
            return None
        name = _digest(model_key, image_size, video_identity(video))
        pos = root / "features" / f"pos-{_digest(model_key, image_size)}.pt"
        return cls(root / "features", root / "features" / name, pos)

    def _load(self, path: Path) -> list[torch.Tensor] | None:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except Exception:  # a damaged file: computed again (and rewritten)
            logger.warning("unreadable feature file %s", path, exc_info=True)
            return None
        return list(data)

    def load(self, frame_idx: int) -> list[torch.Tensor] | None:
        return self._load(self.folder / f"{frame_idx}.pt")

    def load_pos(self) -> list[torch.Tensor] | None:
        return self._load(self.pos)

    def save(self, frame_idx: int, fpn: list[torch.Tensor]) -> None:
        self._save(self.folder / f"{frame_idx}.pt", fpn)
        self._maybe_prune()

    def save_pos(self, pos: list[torch.Tensor]) -> None:
        if not self.pos.exists():
            self._save(self.pos, pos)

    def _save(self, path: Path, tensors: list[torch.Tensor]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, [t.detach().cpu().contiguous() for t in tensors])
        except OSError:  # a full or read-only disk: the features stay in this process only
            logger.warning("could not store features in %s", path, exc_info=True)

    def _maybe_prune(self) -> None:
        with FeatureFolder._lock:
            FeatureFolder._writes += 1
            if FeatureFolder._writes % _PRUNE_EVERY != 1:
                return
        prune_features(self.root)


def prune_features(root: Path, limit_bytes: int | None = None) -> int:
    """Remove the least recently written frame features until the folder holds at most
    ``ANNOTATION_FEATURE_STORE_MB``; how many files were removed."""
    if limit_bytes is None:
        limit_bytes = int(getattr(settings, "ANNOTATION_FEATURE_STORE_MB", 20_000)) * 2**20
    files = []
    for path in root.glob("*/*.pt"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    removed = 0
    for _, size, path in sorted(files):
        if total <= limit_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size
        removed += 1
    return removed


_SAVES = 0
_SAVES_LOCK = threading.Lock()


def prune_states(sessions: Path, max_age: float | None = None) -> int:
    """Remove the states of sessions not saved for ``max_age`` seconds (default: twice
    ``ANNOTATION_SESSION_IDLE_SECONDS``; such a session was closed everywhere); how many."""
    if max_age is None:
        max_age = 2.0 * float(getattr(settings, "ANNOTATION_SESSION_IDLE_SECONDS", 1800))
    now = time.time()
    removed = 0
    for folder in sessions.iterdir() if sessions.is_dir() else ():
        try:
            newest = max((p.stat().st_mtime for p in folder.iterdir()), default=0.0)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if now - newest > max_age:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


class StateFolder:
    """Saved states of one session (video, annotator, model, memory policy)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def for_session(
        cls, video: Video, user_id: int, model_key: str, options: Any
    ) -> StateFolder | None:
        root = state_root()
        if root is None:
            return None
        name = _digest(model_key, repr(options.memory_policy), video_identity(video), user_id)
        return cls(root / "sessions" / name)

    def best(self, digests: Sequence[str], after: int = 0) -> tuple[int, Path] | None:
        """The saved state covering the most operations of the log (more than ``after``):
        ``(operations covered, folder)``, or None."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return None
        best: tuple[int, Path] | None = None
        for name in names:
            count_text, _, digest = name.partition("-")
            if not count_text.isdigit() or not digest:
                continue
            count = int(count_text)
            matches = after < count <= len(digests) and digests[count - 1] == digest
            if matches and (best is None or count > best[0]):
                best = (count, self.folder / name)
        return best

    def save(self, session: VideoSession, digests: Sequence[str]) -> Path | None:
        """Write the session's state as covering the whole log ``digests`` (None: no log)."""
        from model.session_state import export_state

        if not digests:
            return None
        final = self.folder / f"{len(digests):08d}-{digests[-1]}"
        if final.exists():
            return final
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".partial-{uuid.uuid4().hex}"
        try:
            export_state(session, partial)
            partial.rename(final)
        except OSError:
            if not final.exists():
                logger.warning("could not save the session state in %s", final, exc_info=True)
            shutil.rmtree(partial, ignore_errors=True)
            return final if final.exists() else None
        self._prune()
        with _SAVES_LOCK:
            global _SAVES
            _SAVES += 1
            sweep = _SAVES % _PRUNE_EVERY == 1
        if sweep:
            prune_states(self.folder.parent)
        return final

    def _prune(self) -> None:
        """Keep the newest ``KEEP_STATES`` states (other workers prune the same folder)."""
        states = []
        for path in self.folder.iterdir():
            try:
                if path.name[:1].isdigit():
                    states.append((path.stat().st_mtime, path))
            except FileNotFoundError:
                continue
        for _, old in sorted(states)[:-KEEP_STATES]:
            shutil.rmtree(old, ignore_errors=True)
