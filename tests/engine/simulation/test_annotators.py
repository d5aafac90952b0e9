"""Simulated annotators (engine.simulation.annotators): each phase's protocol on one tiny
procedural video with a tiny model, through the engine's own functions, with the phase's tools
only."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine import errors
from engine.annotation import phases
from engine.models import (
    Assignment,
    DraftEdit,
    InteractionEvent,
    Masklet,
    Project,
    Video,
    frame_key,
)
from engine.simulation.annotators import (
    AnnotatedObject,
    AnnotatorConfig,
    DraftEditor,
    SimulatedAnnotator,
)
from engine.simulation.procedural import ProceduralSpec, ProceduralVideo, make_video
from engine.simulation.timing import MaskletWork
from engine.videos import storage
from tests.engine.annotation._serving import serving_settings, tiny_model  # noqa: F401

SPEC = ProceduralSpec(num_frames=5, height=128, width=128, num_objects=1, reappear=False)
CONFIG = AnnotatorConfig(max_clicks=2, max_fix_frames=1, max_strokes=2)
pytestmark = pytest.mark.usefixtures("db", "tiny_model")
PHASE_TOOLS = {
    1: {phases.IMAGE_CLICK, phases.BRUSH, phases.ERASER},
    2: {phases.IMAGE_CLICK, phases.BRUSH, phases.ERASER, phases.PROPAGATE},
    3: {phases.VIDEO_CLICK, phases.PROPAGATE, phases.BRUSH, phases.ERASER},
}


def stored_video(project: Project, procedural: ProceduralVideo) -> Video:
    """The procedural frames stored as decoded JPEG frames, the video ready."""
    frames = procedural.frames
    video = Video.objects.create(
        project=project,
        name=f"procedural-{procedural.seed}.mp4",
        status=Video.Status.READY,
        width=frames.shape[2],
        height=frames.shape[1],
        frame_count=frames.shape[0],
    )
    for index, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
        buffer.seek(0)
        storage.put_file(frame_key(video.pk, index), buffer)
    return video


@pytest.fixture
def procedural() -> ProceduralVideo:
    return make_video(7, SPEC)


def in_phase(project: Project, phase: int) -> Project:
    project.phase = phase
    project.save(update_fields=["phase"])
    return project


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_annotator_submits_a_masklet_with_the_phase_tools(
    phase: int, project, annotator, procedural
) -> None:
    in_phase(project, phase)
    video = stored_video(project, procedural)
    sim = SimulatedAnnotator(annotator, project, lambda v: procedural.masks, CONFIG)
    known: dict[int, AnnotatedObject] = {}

    outcome = sim.work_next(known)

    assert outcome is not None
    assert outcome.kind == Assignment.Kind.ANNOTATE
    (record,) = outcome.objects
    assert known == {record.masklet_id: record}
    masklet = Masklet.objects.get(pk=record.masklet_id)
    assert masklet.video_id == video.pk
    assert masklet.status == Masklet.Status.SUBMITTED
    revision = masklet.current_revision
    assert revision is not None
    assert Assignment.objects.get(pk=outcome.assignment_id).state == Assignment.State.DONE
    # every edit went through the draft log and used the phase's tools only
    edits = DraftEdit.objects.filter(masklet=masklet)
    tools = set(edits.values_list("tool", flat=True))
    assert tools <= PHASE_TOOLS[phase]
    assert edits.filter(revision=revision).count() == edits.count()
    events = InteractionEvent.objects.filter(masklet=masklet)
    clicks = events.filter(kind=InteractionEvent.Kind.CLICK)
    work = record.work
    assert work.clicks >= 1
    assert clicks.count() == work.clicks
    assert set(clicks.values_list("frame_index", flat=True)) == work.clicked
    strokes = events.filter(kind__in=[InteractionEvent.Kind.BRUSH, InteractionEvent.Kind.ERASER])
    assert strokes.count() == work.strokes
    assert events.filter(kind=InteractionEvent.Kind.SUBMIT).count() == 1
    assert all(e.payload["phase"] == phase for e in events)
    visible = int(procedural.masks[0].reshape(SPEC.num_frames, -1).any(axis=1).sum())
    if phase == 1:
        # SAM per frame: every visible frame clicked, nothing propagated
        assert len(work.clicked) == visible
        assert work.located == visible
        assert not events.filter(kind=InteractionEvent.Kind.PROPAGATE).exists()
    else:
        assert events.filter(kind=InteractionEvent.Kind.PROPAGATE).exists()
        assert work.reviewed >= SPEC.num_frames - 1
        # the first visible frame, then at most max_fix_frames corrections
        assert 1 <= len(work.clicked) <= 1 + CONFIG.max_fix_frames
        tool = phases.IMAGE_CLICK if phase == 2 else phases.VIDEO_CLICK
        assert edits.filter(tool=tool).exists()
        # phase 2 propagates from mask prompts only; phase 3 from its clicks
        mask_prompts = edits.filter(tool=phases.PROPAGATE, source=DraftEdit.Source.MASK)
        assert mask_prompts.exists() == (phase == 2)
    # the revision's edited frames are the simulation's edited frames
    assert set(revision.edited_frames) == work.edited
    assert work.seconds() > 0


@pytest.mark.parametrize(
    ("phase", "tool"),
    [(1, phases.VIDEO_CLICK), (2, phases.VIDEO_CLICK), (3, phases.IMAGE_CLICK)],
)
def test_the_server_refuses_a_click_tool_of_another_phase(
    phase: int, tool: str, project, annotator, procedural
) -> None:
    from engine.annotation import drafts, leases

    in_phase(project, phase)
    stored_video(project, procedural)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    masklet = drafts.do_create_object(annotator, lease, "obj")
    editor = DraftEditor(annotator, masklet, MaskletWork(frame_count=SPEC.num_frames))
    with pytest.raises(errors.PermissionDenied):
        editor.click(0, tool, [(64.0, 64.0)], [1])
    assert not DraftEdit.objects.filter(masklet=masklet).exists()
    assert editor.work.clicks == 0


def test_phase_1_refuses_propagation(project, annotator, procedural) -> None:
    from engine.annotation import drafts, leases

    in_phase(project, 1)
    stored_video(project, procedural)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    masklet = drafts.do_create_object(annotator, lease, "obj")
    editor = DraftEditor(annotator, masklet, MaskletWork(frame_count=SPEC.num_frames))
    with pytest.raises(errors.PermissionDenied):
        editor.propagate(0, "forward")


def test_annotator_fixes_the_flagged_frames(project, annotator, reviewer, procedural) -> None:
    from engine.review.verdicts import do_review

    in_phase(project, 3)
    stored_video(project, procedural)
    sim = SimulatedAnnotator(annotator, project, lambda v: procedural.masks, CONFIG)
    known: dict[int, AnnotatedObject] = {}
    (record,) = sim.work_next(known).objects  # type: ignore[union-attr]
    masklet = Masklet.objects.get(pk=record.masklet_id)
    visible = np.flatnonzero(procedural.masks[0].reshape(SPEC.num_frames, -1).any(axis=1))
    flagged = [int(visible[-1])]
    assert masklet.current_revision is not None
    do_review(masklet.current_revision, reviewer, "unsatisfactory", flagged_frames=flagged)
    before = record.work.clicks

    outcome = sim.work_next(known)

    assert outcome is not None
    assert outcome.kind == Assignment.Kind.FIX
    assert outcome.objects == [record]
    assert record.fixes == 1
    assert record.work.clicks > before
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    revision = masklet.current_revision
    assert revision is not None
    assert revision.number == 2
    assert set(revision.edited_frames) == set(flagged)
    assert sim.work_next(known) is None


class ScriptedEditor:
    """Stands in for a DraftEditor whose model answers each click with the next scripted mask."""

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.masks = list(masks)
        self.clicks = 0
        self.video = Video(height=masks[0].shape[0], width=masks[0].shape[1])

    def click(self, frame: int, tool: str, points: list, labels: list[int]) -> np.ndarray:
        self.clicks += 1
        assert len(points) == len(labels) == self.clicks
        return self.masks.pop(0)


def square_object() -> np.ndarray:
    gt = np.zeros((64, 64), dtype=bool)
    gt[20:40, 20:40] = True  # 400 px
    return gt


def part_of(gt: np.ndarray, pixels: int) -> np.ndarray:
    """The first ``pixels`` pixels of ``gt`` in raster order: IoU pixels / |gt|."""
    mask = np.zeros_like(gt)
    rows, cols = np.nonzero(gt)
    mask[rows[:pixels], cols[:pixels]] = True
    return mask


@pytest.mark.parametrize(
    ("pixels", "clicks"),
    [
        ((120, 124, 300), 2),  # IoU 0.30 then 0.31: the model is not following, stop
        ((120, 200, 320), 3),  # 0.30, 0.50, 0.80: clicks until the target
        ((120, 100, 320), 2),  # a click that makes it worse ends the clicking too
    ],
)
def test_annotator_stops_clicking_when_a_click_does_not_help(
    project, annotator, pixels: tuple[int, ...], clicks: int
) -> None:
    gt = square_object()
    editor = ScriptedEditor([part_of(gt, n) for n in pixels])
    sim = SimulatedAnnotator(annotator, project, lambda v: gt[None, None], AnnotatorConfig())

    mask = sim.click_until_done(editor, 0, gt, phases.IMAGE_CLICK, None)  # type: ignore[arg-type]

    assert editor.clicks == clicks
    assert mask.sum() == pixels[clicks - 1]


@pytest.mark.parametrize("phase", [2, 3])
def test_propagating_phases_brush_every_frame_below_the_target(
    phase: int, project, annotator, procedural
) -> None:
    from engine.simulation.reviewers import frame_scores, revision_masks

    in_phase(project, phase)
    stored_video(project, procedural)
    config = AnnotatorConfig(max_clicks=2, max_fix_frames=1)
    sim = SimulatedAnnotator(annotator, project, lambda v: procedural.masks, config)

    (record,) = sim.work_next({}).objects  # type: ignore[union-attr]

    masklet = Masklet.objects.select_related("video").get(pk=record.masklet_id)
    j, _ = frame_scores(revision_masks(masklet), procedural.masks[0])
    assert j.min() >= config.iou_target, j
    assert record.work.strokes > 0
