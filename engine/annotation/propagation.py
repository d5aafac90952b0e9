"""Propagation of one object through its video: a ``propagate`` job, masks saved as they come.

Web side, :func:`do_start_propagation`: checks (phase 2 or 3, lease, version, frame, direction,
model) and queues a job on the ``propagate`` queue.

Worker side, :func:`run_propagation_job`: the annotator's session (all their objects on the
video) is built or reused and synced with the saved prompts (:mod:`engine.annotation.sessions`),
then SAM 2 propagates from ``start_frame`` forward, backward or both (forward first). Phase 2
always starts from a mask prompt, the draft's mask on the start frame; phase 3 uses the clicks
already in the session (an object without any starts from its draft mask too).

The run is ONE save of the draft (one version, one undo step) written as it goes:

- at start, under the masklet's lock, the version the request saw must still be current; the
  draft moves to version ``V`` and a *marker* edit on the start frame records the run:
  ``prompt = {"run": {"job", "start", "direction", "passes": [[reverse, frames], ...]}, ...}``
  (plus ``"mask": true`` and the mask when it starts from a mask prompt);
- each frame's mask is a ``propagated`` edit of version ``V`` with the marker's pass count in
  the same transaction (so a replay runs exactly the frames this run ran), and the job reports
  progress (which stops it between frames on cancel);
- every write checks that the draft is still at ``V``: an edit of the object while it runs
  (a click, an undo) stops the run, which keeps the frames written so far.

A new attempt of the same job (a worker killed mid-run) finds its marker still at the draft's
version and redoes the run in place: each frame's edit of version ``V`` is updated, never
duplicated. Locking: the masklet row (``select_for_update``) in every write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max

from engine.errors import Conflict, InvalidInput
from engine.inference import registry
from engine.jobs.lifecycle import JobReporter, do_create_job, run_job
from engine.masks.rle import decode_rle, encode_rle
from engine.models import Assignment, DraftEdit, InteractionEvent, Job, Masklet, Project, User

from . import drafts, history, leases, phases, telemetry
from .serving import check_model, live_session
from .sessions import row_ops, session_ops

logger = logging.getLogger(__name__)

DIRECTIONS = ("forward", "backward", "both")


@dataclass(frozen=True)
class RunStart:
    """Where a run writes: the draft version ``V`` and its marker edit."""

    version: int
    marker_id: int
    mask_prompt: dict[str, Any] | None


def _check_request(masklet: Masklet, start_frame: Any, direction: Any) -> None:
    if direction not in DIRECTIONS:
        raise InvalidInput(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    count = masklet.video.frame_count
    if isinstance(start_frame, bool) or not isinstance(start_frame, int):
        raise InvalidInput("start_frame must be an integer")
    if not 0 <= start_frame < count:
        raise InvalidInput(f"frame {start_frame} is outside the video (frames 0..{count - 1})")


def _start_mask(masklet: Masklet, start_frame: int) -> dict[str, Any] | None:
    frame = drafts.draft_frames(masklet).get(start_frame)
    return None if frame is None or frame.rle is None else dict(frame.rle)


@transaction.atomic
def do_start_propagation(
    user: User, masklet: Masklet, base_version: int, start_frame: int, direction: str
) -> Job:
    """Check the request and queue the job (sent after commit). Phase 1 refuses (403); phase
    2 needs the object's mask on the start frame (409)."""
    project: Project = masklet.video.project
    leases.check_annotator(user, project)
    phases.check_tool(project, phases.PROPAGATE)
    _check_request(masklet, start_frame, direction)
    locked = Masklet.objects.select_for_update().select_related("video").get(pk=masklet.pk)
    if locked.status not in drafts.EDITABLE:
        raise Conflict(f"the object is {locked.status}; only drafts and fixes can be edited")
    if locked.draft_version != base_version:
        raise drafts.StaleDraft(
            f"the draft is at version {locked.draft_version}, not {base_version}; reload it"
        )
    if leases.holder_lease(user, locked) is None:
        raise leases.NotLeaseHolder("You do not hold this video (or fix); take it first")
    if project.phase == Project.Phase.SAM2_MASK and _start_mask(locked, start_frame) is None:
        raise Conflict(f"phase 2 propagates a mask: draw the object on frame {start_frame} first")
    check_model()
    return do_create_job(
        Job.Kind.PROPAGATE,
        args={
            "masklet_id": masklet.pk,
            "user_id": user.pk,
            "base_version": base_version,
            "start_frame": start_frame,
            "direction": direction,
        },
        project=project,
        video=masklet.video,
        created_by=user,
    )


def _lock(masklet_id: int, user: User) -> tuple[Masklet, Assignment]:
    locked = (
        Masklet.objects.select_for_update(of=("self",))
        .select_related("video", "video__project", "current_revision")
        .get(pk=masklet_id)
    )
    if locked.status not in drafts.EDITABLE:
        raise Conflict(f"the object is {locked.status} now; propagation stopped")
    lease = leases.holder_lease(user, locked)
    if lease is None:
        raise leases.NotLeaseHolder("the annotator no longer holds this video; propagation stopped")
    return locked, lease


def _next_seq(masklet: Masklet) -> int:
    top = DraftEdit.objects.filter(masklet=masklet).aggregate(top=Max("seq"))["top"]
    return 0 if top is None else top + 1


@transaction.atomic
def _begin(job: Job, user: User, needs_mask: bool) -> RunStart:
    """Open the run's save (or find this job's earlier attempt's, to redo it in place)."""
    args = job.args
    masklet, lease = _lock(args["masklet_id"], user)
    start = int(args["start_frame"])
    marker = (
        DraftEdit.objects.filter(masklet=masklet, revision__isnull=True, prompt__run__job=job.pk)
        .order_by("seq")
        .first()
    )
    run = {"job": job.pk, "start": start, "direction": args["direction"], "passes": []}
    if marker is not None and marker.version == masklet.draft_version:
        marker.prompt = {**(marker.prompt or {}), "run": run}
        marker.save(update_fields=["prompt"])
        mask = marker.rle if marker.prompt.get("mask") else None
        return RunStart(marker.version, marker.pk, mask)
    if masklet.draft_version != int(args["base_version"]):
        raise drafts.StaleDraft(
            "the object was edited after propagation was asked for; propagate again"
        )
    mask = _start_mask(masklet, start) if needs_mask else None
    if needs_mask and mask is None:
        raise Conflict(f"draw or click the object on frame {start} before propagating from it")
    version = masklet.draft_version + 1
    marker = DraftEdit.objects.create(
        masklet=masklet,
        seq=_next_seq(masklet),
        version=version,
        frame_index=start,
        tool=phases.PROPAGATE,
        source=DraftEdit.Source.MASK if needs_mask else DraftEdit.Source.PROPAGATED,
        frame_source="click" if needs_mask else "propagated",
        rle=mask if needs_mask else _start_mask(masklet, start),
        prompt={"points": [], "labels": [], "box": None, "mask": needs_mask, "run": run},
        author=user,
    )
    masklet.draft_version = version
    masklet.save(update_fields=["draft_version", "updated_at"])
    leases.do_renew_lease(user, lease)
    return RunStart(version, marker.pk, mask)


def _check_current(masklet: Masklet, run: RunStart) -> None:
    if masklet.draft_version != run.version:
        raise Conflict("the object was edited while propagating; propagation stopped there")


@transaction.atomic
def _open_pass(job: Job, user: User, run: RunStart, reverse: bool) -> None:
    masklet, _ = _lock(job.args["masklet_id"], user)
    _check_current(masklet, run)
    marker = DraftEdit.objects.get(pk=run.marker_id)
    assert marker.prompt is not None
    marker.prompt["run"]["passes"].append([reverse, 0])
    marker.save(update_fields=["prompt"])


@transaction.atomic
def _write_frame(
    job: Job, user: User, run: RunStart, frame_index: int, rle: dict[str, Any] | None
) -> None:
    """Save one propagated frame in the run's version (update its row on a redo)."""
    masklet, _ = _lock(job.args["masklet_id"], user)
    _check_current(masklet, run)
    marker = DraftEdit.objects.get(pk=run.marker_id)
    assert marker.prompt is not None
    marker.prompt["run"]["passes"][-1][1] += 1
    fields = ["prompt"]
    if frame_index == marker.frame_index:
        if run.mask_prompt is None:  # the start frame's own output; a mask prompt stays
            marker.rle, marker.annotated = rle, True
            fields += ["rle", "annotated"]
        marker.save(update_fields=fields)
        return
    marker.save(update_fields=fields)
    updated = DraftEdit.objects.filter(
        masklet=masklet, revision__isnull=True, version=run.version, frame_index=frame_index
    ).update(rle=rle, annotated=True)
    if not updated:
        DraftEdit.objects.create(
            masklet=masklet,
            seq=_next_seq(masklet),
            version=run.version,
            frame_index=frame_index,
            tool=phases.PROPAGATE,
            source=DraftEdit.Source.PROPAGATED,
            frame_source="propagated",
            rle=rle,
            author=user,
        )


def _passes(direction: str) -> list[bool]:
    return {"forward": [False], "backward": [True], "both": [False, True]}[direction]


def _total_frames(start: int, count: int, direction: str) -> int:
    sizes = {False: count - start, True: start + 1}
    return sum(sizes[r] for r in _passes(direction))


def _propagate(job: Job, reporter: JobReporter) -> dict[str, Any]:
    args = job.args
    user = User.objects.get(pk=args["user_id"])
    masklet = Masklet.objects.select_related("video", "video__project").get(pk=args["masklet_id"])
    video = masklet.video
    start, direction = int(args["start_frame"]), str(args["direction"])
    check_model()
    loaded = registry.load_model()
    live = live_session(video, user, loaded)
    written: set[int] = set()
    with live.lock:
        before = session_ops(video, skip_job=job.pk)
        live.sync(before)
        needs_mask = (
            video.project.phase == Project.Phase.SAM2_MASK
            or masklet.object_id not in live.video.obj_ids
        )
        run = _begin(job, user, needs_mask)
        live.applied = None  # until the run's operations are all in the log (below)
        if run.mask_prompt is not None:
            live.video.add_mask(start, masklet.object_id, decode_rle(run.mask_prompt))
        total, done = _total_frames(start, video.frame_count, direction), 0
        reporter.progress(0.0, "starting", force=True)
        for reverse in _passes(direction):
            _open_pass(job, user, run, reverse)
            frames = live.video.propagate(start_frame_idx=start, reverse=reverse)
            try:
                for result in frames:
                    index = result.obj_ids.index(masklet.object_id)
                    mask = result.logits[index, 0].numpy() > 0.0
                    rle = dict(encode_rle(mask)) if mask.any() else None
                    _write_frame(job, user, run, result.frame_idx, rle)
                    written.add(result.frame_idx)
                    done += 1
                    reporter.progress(
                        done / total, f"frame {result.frame_idx}: {done}/{total}", force=True
                    )
            finally:
                frames.close()
        expected = [op.key for op in before] + _run_keys(run, masklet.object_id)
        after = session_ops(video)
        live.applied = expected if [op.key for op in after] == expected else None
        # the interactive worker's next click loads this instead of running the propagation
        live.save_state(after)
    _record_event(user, masklet, run, written)
    return {"masklet_id": masklet.pk, "version": run.version, "frames": len(written)}


def _run_keys(run: RunStart, object_id: int) -> list[Any]:
    return [op.key for op in row_ops(object_id, DraftEdit.objects.get(pk=run.marker_id))]


def _record_event(user: User, masklet: Masklet, run: RunStart, written: set[int]) -> None:
    if not written:
        return
    lease = leases.holder_lease(user, masklet)
    telemetry.record_event(
        user,
        masklet.video,
        InteractionEvent.Kind.PROPAGATE,
        min(written),
        {
            "frames": len(written),
            "first": min(written),
            "last": max(written),
            "version": run.version,
        },
        masklet=masklet,
        assignment=lease,
    )


def run_propagation_job(job_id: int) -> None:
    """The worker side of a ``propagate`` job (the task ``workers.propagate_masklet``)."""
    from model._prompts import PromptError

    run_job(
        job_id,
        _propagate,
        expected=(Conflict, InvalidInput, registry.ModelNotConfigured, PromptError),
        internal_error="propagation failed",
    )


def frames_since(masklet: Masklet, since: int) -> tuple[dict[int, Any], list[int]]:
    """The draft's frames changed by saves of version ``since`` or later: ``({frame: FrameMask},
    [frames no longer in the draft])``. The save at ``since`` itself is included because a
    propagation run keeps adding frames to its one version while the page polls."""
    edits = history.unconsumed_edits(masklet)
    changed = {e.frame_index for e in edits if e.version >= since}
    frames = history.overlay(history.base_frames(masklet), edits)
    return (
        {i: frames[i] for i in sorted(changed) if i in frames},
        sorted(i for i in changed if i not in frames),
    )
