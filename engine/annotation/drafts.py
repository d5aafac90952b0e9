"""Masklet drafts, saved as they happen: objects, frame edits, undo and redo, submit, delete.

A draft is its masklet's current revision overlaid with the edits saved since
(:mod:`engine.annotation.history`); each save appends per-frame rows, never a copy of every
frame. ``Masklet.draft_version`` guards every write: the writer sends the version it last
saw (``base_version``) and a stale one raises :class:`StaleDraft` (409) with nothing written.

Every ``do_*`` here runs in one transaction. Before any lock: the caller's role and the
phase's tools (403), then the input (400). Then it locks the masklet row (``select_for_update``)
and checks the masklet's state, the version and that the caller holds the lease covering the
masklet (409 each). Each save extends the caller's lease and records its telemetry events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from engine.errors import Conflict, InvalidInput
from engine.masklets.revisions import FrameMask, do_save_revision
from engine.models import (
    Assignment,
    DraftEdit,
    InteractionEvent,
    Job,
    Masklet,
    MaskletRevision,
    Project,
    User,
    Video,
)

from . import history, leases, phases, telemetry
from .edits import FRAME_SOURCE, FrameEdit, check_edits

MAX_LABEL_CHARS = 200
EDITABLE = (Masklet.Status.DRAFT, Masklet.Status.NEEDS_FIX)
_EVENT_KIND: dict[str, str] = {
    DraftEdit.Source.CLICK: InteractionEvent.Kind.CLICK,
    DraftEdit.Source.BOX: InteractionEvent.Kind.BOX,
    DraftEdit.Source.MASK: InteractionEvent.Kind.MASK,
    DraftEdit.Source.BRUSH: InteractionEvent.Kind.BRUSH,
    DraftEdit.Source.ERASER: InteractionEvent.Kind.ERASER,
}


class StaleDraft(Conflict):
    """The draft changed since the writer loaded it (409)."""


@dataclass(frozen=True)
class DraftState:
    """What a page or script needs to show and continue a draft."""

    masklet: Masklet
    version: int
    frames: dict[int, FrameMask]
    edited_frames: list[int]
    prompts: list[dict[str, Any]]
    can_undo: bool
    can_redo: bool


def draft_state(masklet: Masklet) -> DraftState:
    edits = history.unconsumed_edits(masklet)
    stacks = history.undo_stacks(edits)
    return DraftState(
        masklet=masklet,
        version=masklet.draft_version,
        frames=history.overlay(history.base_frames(masklet), edits),
        edited_frames=history.edited_frames(edits),
        prompts=history.prompt_log(edits),
        can_undo=bool(stacks.done),
        can_redo=bool(stacks.undone),
    )


def draft_frames(masklet: Masklet) -> dict[int, FrameMask]:
    return history.draft_frames(masklet)


def draft_prompts(masklet: Masklet) -> list[dict[str, Any]]:
    return history.prompt_log(history.unconsumed_edits(masklet))


def _check_label(label: Any) -> str:
    """The label trimmed; InvalidInput (400) naming what is wrong with it."""
    if not isinstance(label, str):
        raise InvalidInput(f"a label is text of at most {MAX_LABEL_CHARS} characters")
    if "\x00" in label:
        raise InvalidInput("a label cannot contain a NUL character (\\x00)")
    label = label.strip()
    if len(label) > MAX_LABEL_CHARS:
        raise InvalidInput(
            f"a label has at most {MAX_LABEL_CHARS} characters; this one has {len(label)}"
        )
    return label


@transaction.atomic
def do_create_object(user: User, assignment: Assignment, label: str = "") -> Masklet:
    """A new manual masklet in draft on the leased video, with the next free object id.

    Locks the video row (the object id), then checks that the caller holds the annotate lease.
    The masklet has no revision until its draft is first submitted.
    """
    label = _check_label(label)
    video = Video.objects.select_for_update().select_related("project").get(pk=assignment.video_id)
    leases.check_annotator(user, video.project)
    lease = Assignment.objects.select_for_update().filter(pk=assignment.pk).first()
    if lease is None or lease.kind != Assignment.Kind.ANNOTATE:
        raise Conflict("objects are added under an annotate lease; a fix edits its own masklet")
    if lease.state != Assignment.State.LEASED or lease.user_id != user.pk:
        raise leases.NotLeaseHolder("You no longer hold this video; take the next video again")
    top = Masklet.objects.filter(video=video).aggregate(top=Max("object_id"))["top"]
    masklet = Masklet.objects.create(
        video=video,
        object_id=0 if top is None else top + 1,
        kind=Masklet.Kind.MANUAL,
        status=Masklet.Status.DRAFT,
        label=label,
    )
    _touch_lease(lease)
    telemetry.record_event(
        user,
        video,
        InteractionEvent.Kind.OBJECT,
        None,
        {"action": "create", "object_id": masklet.object_id},
        masklet=masklet,
        assignment=lease,
    )
    return masklet


@transaction.atomic
def do_rename_object(user: User, masklet: Masklet, base_version: int, label: str) -> int:
    """Change an editable object's label; returns the new draft version.

    A rename is a save of the draft like any edit: on top of ``base_version`` (a stale one is a
    409 with nothing written), by the lease's holder, moving the draft to the next version so
    another tab's next save conflicts. It writes no frame (undo and redo step over it); the
    label goes into the revision when the draft is submitted (:func:`do_submit_draft`).
    """
    label = _check_label(label)
    leases.check_annotator(user, masklet.video.project)
    locked, lease = _lock_for_edit(user, masklet, base_version)
    running = Job.objects.filter(
        kind=Job.Kind.PROPAGATE,
        args__masklet_id=locked.pk,
        status__in=(Job.Status.QUEUED, Job.Status.RUNNING),
    )
    if running.exists():
        # the run writes at the version it started from: a rename now would stop it
        raise Conflict("a propagation is running on this object; rename it once it has ended")
    previous = locked.label
    locked.label = label
    locked.draft_version += 1
    locked.save(update_fields=["label", "draft_version", "updated_at"])
    _touch_lease(lease)
    telemetry.record_event(
        user,
        locked.video,
        InteractionEvent.Kind.OBJECT,
        None,
        {"action": "rename", "object_id": locked.object_id, "from": previous, "to": label},
        masklet=locked,
        assignment=lease,
    )
    masklet.label = label
    masklet.draft_version = locked.draft_version
    return locked.draft_version


def _lock_for_edit(
    user: User, masklet: Masklet, base_version: int, *, role_checked: bool = False
) -> tuple[Masklet, Assignment]:
    """The masklet locked for an edit on ``base_version`` and the caller's lease, after the
    checks (role unless ``role_checked`` in this transaction, status, version, lease)."""
    locked = (
        Masklet.objects.select_for_update(of=("self",))
        .select_related("video", "video__project", "current_revision")
        .get(pk=masklet.pk)
    )
    if not role_checked:
        leases.check_annotator(user, locked.video.project)
    if locked.status not in EDITABLE:
        raise Conflict(f"the object is {locked.status}; only drafts and fixes can be edited")
    if isinstance(base_version, bool) or not isinstance(base_version, int):
        raise InvalidInput("base_version must be an integer")
    if locked.draft_version != base_version:
        raise StaleDraft(
            f"the draft is at version {locked.draft_version}, not {base_version}: it was saved "
            "elsewhere (another tab or user); reload it and apply your edit again"
        )
    lease = leases.holder_lease(user, locked)
    if lease is None:
        raise leases.NotLeaseHolder("You do not hold this video (or fix); take it first")
    return locked, lease


#: A save extends the lease unless it was extended less than this long ago (one write a
#: minute, not one per click).
LEASE_TOUCH_INTERVAL = timedelta(minutes=1)


def _touch_lease(lease: Assignment) -> None:
    expires = timezone.now() + leases.DEFAULT_CONFIG.lease
    current = lease.lease_expires_at
    if current is not None and current > expires - LEASE_TOUCH_INTERVAL:
        return
    lease.lease_expires_at = expires
    lease.save(update_fields=["lease_expires_at"])


def _append(masklet: Masklet, user: User, rows: Sequence[DraftEdit]) -> int:
    """Write one batch as the masklet's next version; the caller holds the masklet lock."""
    version = masklet.draft_version + 1
    top = DraftEdit.objects.filter(masklet=masklet).aggregate(top=Max("seq"))["top"]
    seq = 0 if top is None else top + 1
    for n, row in enumerate(rows):
        row.masklet = masklet
        row.author = user
        row.version = version
        row.seq = seq + n
    DraftEdit.objects.bulk_create(rows)
    masklet.draft_version = version
    masklet.save(update_fields=["draft_version", "updated_at"])
    return version


def do_record_edits(
    user: User, masklet: Masklet, base_version: int, edits: Sequence[FrameEdit]
) -> int:
    """Save a batch of frame edits (one user action: a click, a stroke, a propagation) on top
    of ``base_version``; returns the new version. See the module docstring for the checks."""
    return do_save_edits(user, masklet, base_version, edits)[0]


@transaction.atomic
def do_save_edits(
    user: User, masklet: Masklet, base_version: int, edits: Sequence[FrameEdit]
) -> tuple[int, list[DraftEdit]]:
    """:func:`do_record_edits`, also returning the saved rows (with their ids where the
    database returns them from the insert: PostgreSQL, SQLite 3.35+)."""
    project: Project = masklet.video.project
    leases.check_annotator(user, project)
    for edit in edits:
        phases.check_tool(project, getattr(edit, "tool", ""))
    checked = check_edits(masklet.video, edits)
    locked, lease = _lock_for_edit(user, masklet, base_version, role_checked=True)
    rows = [
        DraftEdit(
            frame_index=e.frame_index,
            tool=e.tool,
            source=e.source,
            frame_source=_frame_source(e.source),
            rle=e.rle,
            prompt=None if e.prompt is None else e.prompt.to_json(),
        )
        for e in checked
    ]
    version = _append(locked, user, rows)
    _touch_lease(lease)
    _record_edit_events(user, locked, lease, checked, version)
    masklet.draft_version = version
    return version, rows


def _frame_source(source: str) -> str:
    return FRAME_SOURCE[DraftEdit.Source(source)]


def _record_edit_events(
    user: User, masklet: Masklet, lease: Assignment, edits: Sequence[FrameEdit], version: int
) -> None:
    """One event per click, box, mask prompt or stroke; one per propagation batch."""
    phase = masklet.video.project.phase

    def row(kind: str, frame: int, payload: dict[str, Any]) -> InteractionEvent:
        return telemetry.event_row(
            user,
            masklet.video,
            kind,
            frame,
            payload,
            phase=phase,
            masklet=masklet,
            assignment=lease,
        )

    events = [
        row(_EVENT_KIND[e.source], e.frame_index, {"tool": e.tool, "version": version})
        for e in edits
        if e.source in _EVENT_KIND
    ]
    propagated = sorted(e.frame_index for e in edits if e.source == DraftEdit.Source.PROPAGATED)
    if propagated:
        first, last = propagated[0], propagated[-1]
        payload = {"frames": len(propagated), "first": first, "last": last, "version": version}
        events.append(row(InteractionEvent.Kind.PROPAGATE, first, payload))
    InteractionEvent.objects.bulk_create(events)


def _restore(user: User, masklet: Masklet, base_version: int, redo: bool) -> int:
    locked, lease = _lock_for_edit(user, masklet, base_version)
    edits = history.unconsumed_edits(locked)
    stacks = history.undo_stacks(edits)
    stack = stacks.undone if redo else stacks.done
    if not stack:
        raise Conflict("nothing to redo" if redo else "nothing to undo")
    target = stack[-1]
    frames = sorted({e.frame_index for e in edits if e.version == target})
    # Undo: each frame as it was just before the target batch; redo: just after it.
    upto = [e for e in edits if (e.version <= target if redo else e.version < target)]
    state = history.overlay(history.base_frames(locked), upto)
    source = DraftEdit.Source.REDO if redo else DraftEdit.Source.UNDO
    rows = [
        DraftEdit(
            frame_index=f,
            source=source,
            frame_source=state[f].source if f in state else "",
            annotated=f in state,
            rle=state[f].rle if f in state else None,
            target_version=target,
        )
        for f in frames
    ]
    version = _append(locked, user, rows)
    _touch_lease(lease)
    kind = InteractionEvent.Kind.REDO if redo else InteractionEvent.Kind.UNDO
    telemetry.record_event(
        user,
        locked.video,
        kind,
        frames[0] if len(frames) == 1 else None,
        {"frames": frames, "target_version": target, "version": version},
        masklet=locked,
        assignment=lease,
    )
    masklet.draft_version = version
    return version


@transaction.atomic
def do_undo(user: User, masklet: Masklet, base_version: int) -> int:
    """Undo the last save still in force (every frame it changed); returns the new version."""
    return _restore(user, masklet, base_version, redo=False)


@transaction.atomic
def do_redo(user: User, masklet: Masklet, base_version: int) -> int:
    """Re-apply the last undone save; returns the new version."""
    return _restore(user, masklet, base_version, redo=True)


@transaction.atomic
def do_submit_draft(user: User, masklet: Masklet, base_version: int) -> MaskletRevision:
    """Make the draft an immutable revision and send the masklet to review.

    The revision replaces the previous one's frames with the draft's; ``edited_frames`` are the
    frames changed by click, box, brush or eraser. The consumed edits point at the revision, so
    the next draft starts from it; a fix assignment on the masklet is done.
    """
    locked, lease = _lock_for_edit(user, masklet, base_version)
    edits = history.unconsumed_edits(locked)
    frames = history.overlay(history.base_frames(locked), edits)
    if not any(frame.rle is not None for frame in frames.values()):
        raise Conflict("the object has no mask on any frame yet; draw it before submitting")
    revision = do_save_revision(
        locked,
        author=user,
        frames=frames,
        base_revision_id=locked.current_revision_id,
        edited_frames=history.edited_frames(edits),
        replace=True,
        note="annotation draft",
    )
    DraftEdit.objects.filter(masklet=locked, revision__isnull=True).update(revision=revision)
    locked.status = Masklet.Status.SUBMITTED
    locked.draft_version += 1
    locked.save(update_fields=["status", "draft_version", "updated_at"])
    if lease.kind == Assignment.Kind.FIX:
        lease.state = Assignment.State.DONE
        lease.completed_at = timezone.now()
        lease.save(update_fields=["state", "completed_at"])
    else:
        _touch_lease(lease)
    telemetry.record_event(
        user,
        locked.video,
        InteractionEvent.Kind.SUBMIT,
        None,
        {"revision": revision.number, "frames": len(frames)},
        masklet=locked,
        assignment=lease,
    )
    masklet.status = locked.status
    masklet.draft_version = locked.draft_version
    masklet.current_revision = revision
    return revision


@transaction.atomic
def do_delete_object(user: User, masklet: Masklet, base_version: int) -> None:
    """Delete a draft object of the leased video with its draft. Objects sent back by review
    are fixed, not deleted. Its telemetry stays (detached from the masklet)."""
    locked, lease = _lock_for_edit(user, masklet, base_version)
    if locked.status != Masklet.Status.DRAFT:
        raise Conflict("an object sent back by review is fixed, not deleted")
    InteractionEvent.objects.filter(masklet=locked).update(masklet=None)
    telemetry.record_event(
        user,
        locked.video,
        InteractionEvent.Kind.OBJECT,
        None,
        {"action": "delete", "object_id": locked.object_id},
        assignment=lease,
    )
    _touch_lease(lease)
    locked.delete()
