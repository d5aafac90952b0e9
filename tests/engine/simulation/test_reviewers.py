"""Simulated reviewers (engine.simulation.reviewers): verdicts against the ground truth through
the engine's review functions."""

from __future__ import annotations

import numpy as np
import pytest

from engine.annotation import drafts, leases, phases
from engine.annotation.edits import FrameEdit
from engine.masks.rle import encode_rle
from engine.models import Assignment, Masklet, Project, Review, Video
from engine.simulation.reviewers import ReviewerConfig, SimulatedReviewer, judge

T, H, W = 6, 32, 48


def square_truth() -> np.ndarray:
    """(1, T, H, W): a 12x12 square moving right by 3 px a frame."""
    truth = np.zeros((1, T, H, W), dtype=bool)
    for t in range(T):
        truth[0, t, 10:22, 4 + 3 * t : 16 + 3 * t] = True
    return truth


def test_judge_accepts_the_ground_truth() -> None:
    gt = square_truth()[0]
    verdict = judge(gt.copy(), gt, sendbacks=0)
    assert verdict.verdict == Review.Verdict.SATISFACTORY
    assert verdict.jf == pytest.approx(1.0)
    assert verdict.flagged == ()


def test_judge_flags_the_worst_frames_of_a_corrupted_masklet() -> None:
    gt = square_truth()[0]
    pred = gt.copy()
    pred[1] = False  # missed entirely
    pred[4] = np.roll(gt[4], 8, axis=1)  # shifted off the object
    verdict = judge(pred, gt, sendbacks=0, config=ReviewerConfig(accept_jf=0.9))
    assert verdict.verdict == Review.Verdict.UNSATISFACTORY
    assert verdict.flagged == (1, 4)
    assert verdict.jf < 0.9


def test_judge_rejects_after_the_sendback_budget_and_tiny_objects() -> None:
    gt = square_truth()[0]
    empty = np.zeros_like(gt)
    assert judge(empty, gt, sendbacks=2).verdict == Review.Verdict.REJECT
    speck = np.zeros_like(gt)
    speck[:, 5, 5] = True
    assert judge(speck, speck, sendbacks=0).verdict == Review.Verdict.REJECT


def submitted_masklet(project: Project, annotator, masks: np.ndarray) -> Masklet:
    """A masklet submitted through the engine: brush strokes painting ``masks`` (T, H, W)."""
    project.phase = Project.Phase.SAM_PER_FRAME
    project.save(update_fields=["phase"])
    Video.objects.create(
        project=project, name="v.mp4", status=Video.Status.READY, width=W, height=H, frame_count=T
    )
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    masklet = drafts.do_create_object(annotator, lease, "square")
    edits = [
        FrameEdit(t, phases.BRUSH, dict(encode_rle(masks[t]))) for t in range(T) if masks[t].any()
    ]
    version = drafts.do_record_edits(annotator, masklet, masklet.draft_version, edits)
    drafts.do_submit_draft(annotator, masklet, version)
    leases.do_finish_video(annotator, lease)
    return masklet


def test_reviewer_verifies_a_masklet_equal_to_the_ground_truth(project, annotator, reviewer):
    truth = square_truth()
    masklet = submitted_masklet(project, annotator, truth[0])
    sim = SimulatedReviewer(reviewer, project, lambda video: truth, lambda m: 0)
    records = sim.review_all()
    assert [(r.masklet_id, r.verdict) for r in records] == [
        (masklet.pk, Review.Verdict.SATISFACTORY)
    ]
    assert records[0].seconds == pytest.approx(30.0 * T / 300)
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.VERIFIED
    review = Review.objects.get(revision__masklet=masklet)
    assert review.reviewer == reviewer


def test_reviewer_sends_a_corrupted_masklet_back_with_its_worst_frames(
    project, annotator, reviewer
):
    truth = square_truth()
    corrupted = truth[0].copy()
    corrupted[2] = False
    corrupted[3, :, :] = False
    corrupted[3, 0:6, 0:6] = True  # a speck far from the object
    masklet = submitted_masklet(project, annotator, corrupted)
    sim = SimulatedReviewer(
        reviewer, project, lambda video: truth, lambda m: 0, ReviewerConfig(accept_jf=0.95)
    )
    (record,) = sim.review_all()
    assert record.verdict == Review.Verdict.UNSATISFACTORY
    assert record.flagged == (2, 3)
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.NEEDS_FIX
    fix = Assignment.objects.get(kind=Assignment.Kind.FIX, masklet=masklet)
    assert fix.flagged_frames == [2, 3]
    assert fix.user == annotator
    # the annotator's queue now hands out that fix first
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    assert lease.pk == fix.pk
