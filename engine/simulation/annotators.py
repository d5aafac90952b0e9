"""Simulated annotators: each phase's protocol, through the engine functions the workspace calls.

An annotator takes work from the queue (:func:`engine.annotation.leases.do_take_next_video`),
adds objects (``drafts.do_create_object``), clicks through the model server's own handler
(:func:`engine.annotation.serving.handle_prompt`, what the ``interactive`` worker runs), paints
strokes (``drafts.do_record_edits``), propagates (``propagation.do_start_propagation``, then
:func:`~engine.annotation.propagation.run_propagation_job` in this process, as the ``propagate``
worker would), and submits (``drafts.do_submit_draft``). So the server's checks (phase tools,
lease, versions) apply to it as to a person, and its events land in the telemetry.

The protocols (DESIGN.md sections 5.2 and 7; the paper's section 5.1):

- **Phase 1** (SAM per frame): on every frame where the object is visible, image clicks (first at
  the object's centre, each next at the centre of the largest error) until IoU >= the target or
  the click budget, then brush/eraser strokes on the remaining error regions.
- **Phase 2** (SAM 2 Mask): the first visible frame as in phase 1; its mask is the prompt that
  SAM 2 propagates; the annotator watches the result, re-annotates from scratch the first frame
  below the target (clicks and strokes), propagates from it again, and so on.
- **Phase 3** (SAM 2): video clicks on the first visible frame, propagation, then correction
  clicks on the first frame below the target (a conditioning frame, through memory) and
  propagation from there, until every frame is at the target or the budget is spent.

In both propagation phases the annotator then brushes every frame still below the target before
submitting (strokes are no prompts: a propagation afterwards would overwrite them). On any frame
the annotator stops clicking once a click raises the IoU by less than ``min_click_gain``: the
model is not following, the brush finishes the frame.

The annotator sees the ground truth (its "eyes"), never the reviewer's. Fixes sent back by a
reviewer re-annotate the flagged frames with the phase's click tool and strokes.
The simulated seconds, clicks and edits of each masklet are kept in a
:class:`~engine.simulation.timing.MaskletWork`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from engine.annotation import drafts, leases, phases, propagation, serving
from engine.annotation.edits import FrameEdit
from engine.errors import Conflict
from engine.masks.rle import decode_rle, encode_rle
from engine.models import Assignment, Job, Masklet, Project, User, Video
from engine.simulation.clicks import Click, first_click, mask_iou, next_click
from engine.simulation.timing import MaskletWork

#: Names the simulated worker in ModelSession rows (no direct queue: it is this process).
WORKER = "simulation"
#: The ground truth of a video: (O, T, H, W) bool, object o on frame t.
Truth = Callable[[Video], np.ndarray]


@dataclass(frozen=True)
class AnnotatorConfig:
    """How the simulated annotator works (DESIGN.md section 7)."""

    iou_target: float = 0.75
    #: Clicks on one frame before the annotator gives up on the model for it.
    max_clicks: int = 8
    #: Frames re-annotated (phase 2) or corrected (phase 3) per object before submitting.
    max_fix_frames: int = 12
    #: Strokes per frame; error regions smaller than this share of the frame are left as they are.
    max_strokes: int = 8
    min_stroke_fraction: float = 0.0005
    #: A click that raises the frame's IoU by less than this is the last one tried on it.
    min_click_gain: float = 0.02


@dataclass
class AnnotatedObject:
    """One masklet the annotator made, with the GT object it traces and the work it took."""

    masklet_id: int
    video_id: int
    gt_index: int
    phase: int
    work: MaskletWork
    fixes: int = 0


@dataclass
class VideoOutcome:
    """What one take from the queue produced: new objects, or one fixed masklet."""

    assignment_id: int
    kind: str
    objects: list[AnnotatedObject] = field(default_factory=list)


def _empty(video: Video) -> np.ndarray:
    return np.zeros((video.height or 0, video.width or 0), dtype=bool)


class DraftEditor:
    """One masklet's draft, edited through the engine as the workspace does.

    Keeps the draft version the next save must name and counts the work in ``work``.
    """

    def __init__(self, user: User, masklet: Masklet, work: MaskletWork) -> None:
        self.user = user
        self.masklet = masklet
        self.video: Video = masklet.video
        self.version = masklet.draft_version
        self.work = work

    def click(
        self, frame: int, tool: str, points: list[tuple[float, float]], labels: list[int]
    ) -> np.ndarray:
        """Send the frame's full prompt (one click more than the last); the model's (H, W) mask."""
        request = serving.PromptRequest(
            masklet_id=self.masklet.pk,
            base_version=self.version,
            frame_index=frame,
            tool=tool,
            points=tuple(points),
            labels=tuple(labels),
        )
        payload = {"user_id": self.user.pk, **request.to_json()}
        reply = serving.unpack_reply(serving.handle_prompt(payload, worker=WORKER, queue=""))
        self.version = int(reply["version"])
        self.work.clicks += 1
        self.work.clicked.add(frame)
        self.work.edited.add(frame)
        rle = reply["rle"]
        return _empty(self.video) if rle is None else decode_rle(rle)

    def stroke(self, frame: int, tool: str, mask: np.ndarray) -> None:
        """Save the frame's mask after one brush or eraser stroke."""
        rle = encode_rle(mask) if mask.any() else None
        edit = FrameEdit(frame, tool, None if rle is None else dict(rle))
        self.version = drafts.do_record_edits(self.user, self.masklet, self.version, [edit])
        self.work.strokes += 1
        self.work.edited.add(frame)

    def propagate(self, start: int, direction: str) -> int:
        """Propagate from ``start`` (a job run here as the worker would); frames written."""
        job = propagation.do_start_propagation(
            self.user, self.masklet, self.version, start, direction
        )
        propagation.run_propagation_job(job.pk)
        job.refresh_from_db()
        if job.status != Job.Status.SUCCEEDED:
            raise Conflict(f"propagation job {job.pk} ended {job.status}: {job.error}")
        self.masklet.refresh_from_db(fields=["draft_version"])
        self.version = self.masklet.draft_version
        frames = int(job.result.get("frames", 0))
        self.work.reviewed += frames
        return frames

    def frames(self) -> dict[int, np.ndarray]:
        """The draft's masks by frame (frames never annotated are absent)."""
        return {
            index: _empty(self.video) if frame.rle is None else decode_rle(frame.rle)
            for index, frame in drafts.draft_frames(self.masklet).items()
        }

    def submit(self) -> None:
        drafts.do_submit_draft(self.user, self.masklet, self.version)
        self.version = self.masklet.draft_version


def visible_frames(truth: np.ndarray) -> list[int]:
    """Frames of a (T, H, W) object where it has at least one pixel."""
    return [int(t) for t in np.flatnonzero(truth.reshape(truth.shape[0], -1).any(axis=1))]


def _as_point(click: Click) -> tuple[float, float]:
    return (float(click.x), float(click.y))


class SimulatedAnnotator:
    """An annotator of ``project`` who annotates in the project's phase, seeing ``truth``."""

    def __init__(
        self,
        user: User,
        project: Project,
        truth: Truth,
        config: AnnotatorConfig | None = None,
    ) -> None:
        self.user = user
        self.project = project
        self.truth = truth
        self.config = config or AnnotatorConfig()

    # --- the queue ------------------------------------------------------------------------

    def work_next(self, objects: dict[int, AnnotatedObject]) -> VideoOutcome | None:
        """Take the next item of the queue and do it; None when the queue is empty.

        ``objects`` (masklet id -> record) gains the new masklets; a fix adds its work to the
        masklet's record.
        """
        lease = leases.do_take_next_video(self.user, self.project)
        if lease is None:
            return None
        self.project.refresh_from_db(fields=["phase"])
        if lease.kind == Assignment.Kind.FIX:
            assert lease.masklet_id is not None
            record = objects[lease.masklet_id]
            self.fix(lease, record)
            return VideoOutcome(lease.pk, lease.kind, [record])
        outcome = VideoOutcome(lease.pk, lease.kind, self.annotate_video(lease))
        for record in outcome.objects:
            objects[record.masklet_id] = record
        return outcome

    def annotate_video(self, lease: Assignment) -> list[AnnotatedObject]:
        """Every visible GT object of the leased video as a submitted masklet, in GT order."""
        video = Video.objects.select_related("project").get(pk=lease.video_id)
        truth = self.truth(video)
        made = []
        for index in range(truth.shape[0]):
            if not visible_frames(truth[index]):
                continue
            masklet = drafts.do_create_object(self.user, lease, f"object {index}")
            masklet = Masklet.objects.select_related("video", "video__project").get(pk=masklet.pk)
            work = MaskletWork(frame_count=video.frame_count)
            editor = DraftEditor(self.user, masklet, work)
            self.annotate_object(editor, truth[index])
            editor.submit()
            made.append(AnnotatedObject(masklet.pk, video.pk, index, self.project.phase, work))
        leases.do_finish_video(self.user, lease)
        return made

    def annotate_object(self, editor: DraftEditor, truth: np.ndarray) -> None:
        """One object in the project's phase protocol (see the module docstring)."""
        phase = self.project.phase
        if phase == Project.Phase.SAM_PER_FRAME:
            for frame in visible_frames(truth):
                self.frame_with_image_tools(editor, frame, truth[frame])
        elif phase == Project.Phase.SAM2_MASK:
            self._propagating(editor, truth, self._phase2_frame)
        else:
            self._propagating(editor, truth, self._phase3_frame)

    # --- one frame ------------------------------------------------------------------------

    def click_until_done(
        self, editor: DraftEditor, frame: int, gt: np.ndarray, tool: str, pred: np.ndarray | None
    ) -> np.ndarray:
        """Clicks on one frame until IoU >= the target or the budget; the last mask.

        ``pred`` None starts a new prompt at the object's centre; otherwise the first click
        corrects ``pred`` (the centre of its largest error).
        """
        points: list[tuple[float, float]] = []
        labels: list[int] = []
        click = first_click(gt) if pred is None else next_click(pred, gt)
        mask = pred if pred is not None else _empty(editor.video)
        iou = mask_iou(mask, gt) if pred is not None else 0.0
        while click is not None and len(points) < self.config.max_clicks:
            points.append(_as_point(click))
            labels.append(1 if click.positive else 0)
            mask = editor.click(frame, tool, points, labels)
            previous, iou = iou, mask_iou(mask, gt)
            if iou >= self.config.iou_target or iou < previous + self.config.min_click_gain:
                break
            click = next_click(mask, gt)
        return mask

    def brush(
        self, editor: DraftEditor, frame: int, mask: np.ndarray, gt: np.ndarray
    ) -> np.ndarray:
        """Fix the remaining error by hand; the final mask.

        First at most two broad strokes: a wide eraser over every spurious pixel away from the
        object (farther than ``BROAD_MARGIN`` px) and a wide brush over every missed pixel deep
        inside it; then fine strokes along the boundary, largest error region first.
        """
        mask = mask.copy()
        smallest = max(1, int(self.config.min_stroke_fraction * gt.size))
        near = ndimage.binary_dilation(gt, iterations=BROAD_MARGIN) if gt.any() else gt
        deep = ndimage.binary_erosion(gt, iterations=BROAD_MARGIN)
        for region, positive in ((mask & ~near, False), (deep & ~mask, True)):
            if int(region.sum()) >= smallest:
                mask[region] = positive
                editor.stroke(frame, phases.BRUSH if positive else phases.ERASER, mask)
        for _ in range(self.config.max_strokes):
            missed, spurious = gt & ~mask, mask & ~gt
            fine, size, positive = _largest_region(missed, spurious)
            if fine is None or size < smallest:
                break
            mask[fine] = positive
            editor.stroke(frame, phases.BRUSH if positive else phases.ERASER, mask)
        return mask

    def frame_with_image_tools(
        self, editor: DraftEditor, frame: int, gt: np.ndarray, current: np.ndarray | None = None
    ) -> np.ndarray:
        """SAM on the frame (image clicks, a new mask) then strokes: how phases 1 and 2 draw a
        frame. Where the object is absent the frame's ``current`` mask is erased instead."""
        editor.work.located += 1
        mask = _empty(editor.video) if current is None else current
        if gt.any():
            mask = self.click_until_done(editor, frame, gt, phases.IMAGE_CLICK, None)
        return self.brush(editor, frame, mask, gt)

    # --- propagation phases ---------------------------------------------------------------

    def _phase2_frame(
        self, editor: DraftEditor, frame: int, gt: np.ndarray, pred: np.ndarray | None
    ) -> bool:
        """Re-draw the frame from scratch; True when its mask can be propagated."""
        mask = self.frame_with_image_tools(editor, frame, gt, pred)
        return bool(mask.any())

    def _phase3_frame(
        self, editor: DraftEditor, frame: int, gt: np.ndarray, pred: np.ndarray | None
    ) -> bool:
        """Video clicks on the frame (a correction when it was tracked); always propagated."""
        editor.work.located += 1
        if pred is None and not gt.any():
            return False
        before = editor.work.clicks
        self.click_until_done(editor, frame, gt, phases.VIDEO_CLICK, pred)
        return editor.work.clicks > before

    def _propagating(
        self,
        editor: DraftEditor,
        truth: np.ndarray,
        draw: Callable[[DraftEditor, int, np.ndarray, np.ndarray | None], bool],
    ) -> None:
        """Draw the first visible frame, propagate, then fix the first frame below the target
        (in viewing order: forward from the start, then backward) and propagate from it; last,
        brush the frames still below the target."""
        start = visible_frames(truth)[0]
        last = truth.shape[0] - 1
        if draw(editor, start, truth[start], None):
            editor.propagate(start, "forward" if start == 0 else "both")
        fixed = {start}
        order = [*range(start + 1, last + 1), *range(start - 1, -1, -1)]
        for _ in range(self.config.max_fix_frames):
            frames = editor.frames()
            bad = next(
                (
                    t
                    for t in order
                    if t not in fixed
                    and mask_iou(frames.get(t, _empty(editor.video)), truth[t])
                    < self.config.iou_target
                ),
                None,
            )
            if bad is None:
                break
            fixed.add(bad)
            if draw(editor, bad, truth[bad], frames.get(bad)):
                direction = "backward" if bad < start else "forward"
                if (direction == "forward" and bad < last) or (direction == "backward" and bad > 0):
                    editor.propagate(bad, direction)
        self.brush_below_target(editor, truth)

    def brush_below_target(self, editor: DraftEditor, truth: np.ndarray) -> None:
        """Strokes on every frame whose mask is still below the target (the last pass before
        submitting a propagated masklet)."""
        frames = editor.frames()
        for t in range(truth.shape[0]):
            mask = frames.get(t, _empty(editor.video))
            if mask_iou(mask, truth[t]) < self.config.iou_target:
                editor.work.located += 1
                self.brush(editor, t, mask, truth[t])

    # --- fixes ----------------------------------------------------------------------------

    def fix(self, lease: Assignment, record: AnnotatedObject) -> None:
        """Re-annotate the reviewer's flagged frames (phase click tool, then strokes), submit."""
        assert lease.masklet_id is not None
        masklet = Masklet.objects.select_related("video", "video__project").get(pk=lease.masklet_id)
        truth = self.truth(masklet.video)[record.gt_index]
        editor = DraftEditor(self.user, masklet, record.work)
        tool = (
            phases.VIDEO_CLICK
            if self.project.phase == Project.Phase.SAM2_FULL
            else phases.IMAGE_CLICK
        )
        current = editor.frames()
        for frame in lease.flagged_frames:
            editor.work.located += 1
            gt = truth[frame]
            mask = current.get(frame, _empty(editor.video))
            if gt.any():
                mask = self.click_until_done(editor, frame, gt, tool, None)
            self.brush(editor, frame, mask, gt)
        editor.submit()
        record.fixes += 1


#: Error pixels this close together are painted by one stroke (a brush is a few pixels wide).
STROKE_REACH = 2
#: Broad strokes cover errors farther than this from the object's boundary (px).
BROAD_MARGIN = 3


def _largest_region(
    missed: np.ndarray, spurious: np.ndarray
) -> tuple[np.ndarray | None, int, bool]:
    """The largest error region one stroke fixes: (its (H, W) bool mask, its size in error
    pixels, missed?). Error pixels within ``STROKE_REACH`` px of each other form one region."""
    best: tuple[np.ndarray | None, int, bool] = (None, 0, True)
    for error, positive in ((missed, True), (spurious, False)):
        if not error.any():
            continue
        reach = ndimage.binary_dilation(error, iterations=STROKE_REACH)
        labelled, count = ndimage.label(reach)
        labelled[~error] = 0
        sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
        top = int(np.argmax(sizes))
        if int(sizes[top]) > best[1]:
            best = (labelled == top + 1, int(sizes[top]), positive)
    return best
