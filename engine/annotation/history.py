"""Reading a draft's edit log: the current frames, the undo and redo stacks, the prompt log.

The log is the masklet's unconsumed :class:`~engine.models.DraftEdit` rows in ``seq`` order.
Every save appends one *batch* of rows sharing a ``version``. Undo and redo are batches too,
so the log alone says what is applied: replaying it with two stacks,

- a normal save pushes its version on ``done`` and empties ``undone``;
- an undo pops ``done`` (its ``target_version``) onto ``undone``;
- a redo pops ``undone`` and pushes its own version on ``done``, remembering the original.

Undoing the top of ``done`` restores each of its frames to its state just before that batch;
redoing the top of ``undone`` restores its frames to their state just after it. Nothing here
writes; :mod:`engine.annotation.drafts` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.masklets.revisions import FrameMask, revision_frames
from engine.models import DraftEdit, Masklet

from .edits import EDITING_SOURCES


@dataclass(frozen=True)
class Stacks:
    #: Versions of the batches in force, in the order they were applied.
    done: tuple[int, ...]
    #: Versions of undone batches; the next redo is the last.
    undone: tuple[int, ...]
    #: For each version in ``done`` or ``undone``: the normal save it applies (redo chains).
    origin: Mapping[int, int]


def unconsumed_edits(masklet: Masklet) -> list[DraftEdit]:
    """The masklet's draft log since its current revision, oldest first."""
    return list(DraftEdit.objects.filter(masklet=masklet, revision__isnull=True).order_by("seq"))


def base_frames(masklet: Masklet) -> dict[int, FrameMask]:
    """The frames a draft starts from: its masklet's current revision (none for a new object)."""
    revision = masklet.current_revision
    return {} if revision is None else revision_frames(revision)


def overlay(base: Mapping[int, FrameMask], edits: Iterable[DraftEdit]) -> dict[int, FrameMask]:
    """``base`` with ``edits`` applied in order; frames stay sorted by index."""
    frames = dict(base)
    for edit in edits:
        if edit.annotated:
            frames[edit.frame_index] = FrameMask(edit.rle, edit.frame_source)
        else:
            frames.pop(edit.frame_index, None)
    return dict(sorted(frames.items()))


def batches(edits: Sequence[DraftEdit]) -> dict[int, list[DraftEdit]]:
    """The log's rows grouped by the save (version) that wrote them, in log order."""
    grouped: dict[int, list[DraftEdit]] = {}
    for edit in edits:
        grouped.setdefault(edit.version, []).append(edit)
    return grouped


def undo_stacks(edits: Sequence[DraftEdit]) -> Stacks:
    done: list[int] = []
    undone: list[int] = []
    origin: dict[int, int] = {}
    for version, rows in batches(edits).items():
        source = rows[0].source
        if source == DraftEdit.Source.UNDO:
            undone.append(done.pop())
        elif source == DraftEdit.Source.REDO:
            redone = undone.pop()
            origin[version] = origin[redone]
            done.append(version)
        else:
            origin[version] = version
            done.append(version)
            undone.clear()
    return Stacks(tuple(done), tuple(undone), origin)


def edited_frames(edits: Sequence[DraftEdit]) -> list[int]:
    """Frames changed by hand (click, box, brush, eraser) in batches still in force; frames
    only propagated are not edited (the paper's "% edited frames")."""
    stacks = undo_stacks(edits)
    grouped = batches(edits)
    frames: set[int] = set()
    for version in stacks.done:
        frames.update(
            e.frame_index for e in grouped[stacks.origin[version]] if e.source in EDITING_SOURCES
        )
    return sorted(frames)


def prompt_log(edits: Sequence[DraftEdit]) -> list[dict[str, Any]]:
    """The prompts of the batches in force, in the order they were applied: what a model
    session replays, on top of the masklet's current revision, to rebuild itself."""
    stacks = undo_stacks(edits)
    grouped = batches(edits)
    log: list[dict[str, Any]] = []
    for version in stacks.done:
        for edit in grouped[stacks.origin[version]]:
            if edit.prompt is None:
                continue
            log.append(
                {
                    "seq": edit.seq,
                    "version": edit.version,
                    "frame_index": edit.frame_index,
                    "tool": edit.tool,
                    **edit.prompt,
                    "mask": edit.rle if edit.prompt.get("mask") else None,
                }
            )
    return log


def draft_frames(masklet: Masklet) -> dict[int, FrameMask]:
    """The draft as it stands: the current revision's frames overlaid with the edits since."""
    return overlay(base_frames(masklet), unconsumed_edits(masklet))
