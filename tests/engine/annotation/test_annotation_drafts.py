"""Drafts saved as they happen: versions, validation, undo/redo, submit, delete, prompt log."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from engine.accounts.projects import do_create_user, do_set_membership
from engine.annotation import drafts, leases
from engine.annotation.edits import FrameEdit, InvalidEdit, Prompt
from engine.errors import Conflict, PermissionDenied
from engine.masklets.revisions import revision_frames
from engine.masks.rle import decode_rle, encode_rle
from engine.models import Assignment, DraftEdit, InteractionEvent, Masklet
from tests.engine.annotation._annotation import (
    H,
    W,
    box_mask,
    click,
    propagated,
    sent_back_for_fix,
    stroke,
    video,
)


@pytest.fixture
def lease(project, annotator):
    video(project)
    taken = leases.do_take_next_video(annotator, project)
    assert taken is not None
    return taken


@pytest.fixture
def masklet(annotator, lease):
    return drafts.do_create_object(annotator, lease, "cup")


def _decoded(masklet: Masklet) -> dict[int, Any]:
    return {
        i: None if f.rle is None else decode_rle(f.rle)
        for i, f in drafts.draft_frames(masklet).items()
    }


def test_objects_get_the_next_free_id(annotator, lease):
    first = drafts.do_create_object(annotator, lease, "cup")
    second = drafts.do_create_object(annotator, lease, " hand ")
    assert (first.object_id, second.object_id) == (0, 1)
    assert second.label == "hand"
    assert first.status == Masklet.Status.DRAFT
    assert first.current_revision is None


def test_edits_are_saved_per_frame_and_versioned(annotator, masklet):
    v1 = drafts.do_record_edits(annotator, masklet, 0, [click(0, box_mask(2, 2))])
    v2 = drafts.do_record_edits(
        annotator, masklet, v1, [propagated(i, box_mask(2 + i, 2)) for i in range(1, 4)]
    )
    v3 = drafts.do_record_edits(annotator, masklet, v2, [stroke(2, box_mask(9, 9))])
    assert (v1, v2, v3) == (1, 2, 3)
    # one row per changed frame, never a copy of the whole draft
    assert DraftEdit.objects.filter(masklet=masklet).count() == 5
    frames = _decoded(masklet)
    assert sorted(frames) == [0, 1, 2, 3]
    assert np.array_equal(frames[2], box_mask(9, 9))
    state = drafts.draft_state(masklet)
    assert state.version == 3
    assert state.edited_frames == [0, 2]
    assert state.frames[1].source == "propagated"
    assert state.frames[2].source == "brush"


def test_stale_version_conflicts_and_writes_nothing(annotator, masklet):
    drafts.do_record_edits(annotator, masklet, 0, [click(0, box_mask(2, 2))])
    before = DraftEdit.objects.count(), InteractionEvent.objects.count()
    with pytest.raises(drafts.StaleDraft):
        drafts.do_record_edits(annotator, masklet, 0, [click(1, box_mask(3, 3))])
    with pytest.raises(drafts.StaleDraft):
        drafts.do_undo(annotator, masklet, 0)
    assert (DraftEdit.objects.count(), InteractionEvent.objects.count()) == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (FrameEdit(10, "video_click", None, Prompt(((1.0, 1.0),), (1,))), "outside the video"),
        (FrameEdit(0, "video_click", None, Prompt(((math.nan, 1.0),), (1,))), "finite"),
        (FrameEdit(0, "video_click", None, Prompt(((1.0, math.inf),), (1,))), "finite"),
        (FrameEdit(0, "video_click", None, Prompt(((W + 1.0, 1.0),), (1,))), "outside"),
        (FrameEdit(0, "video_click", None, Prompt(((1.0, -0.5),), (1,))), "outside"),
        (FrameEdit(0, "video_click", None, Prompt(((1.0, 1.0),), (2,))), "labels"),
        (FrameEdit(0, "video_click", None, Prompt(((1.0, 1.0),), ())), "one label per point"),
        (FrameEdit(0, "video_click", None, Prompt()), "at least one point"),
        (FrameEdit(0, "video_box", None, Prompt(box=(9.0, 1.0, 2.0, 5.0))), "x0 < x1"),
        (FrameEdit(0, "brush", {"size": [H, W + 1], "counts": [H * (W + 1)]}), "the video is"),
        (FrameEdit(0, "brush", {"size": [H, W], "counts": [5, 5]}), "cover 10 pixels"),
        (FrameEdit(0, "brush", {"size": [H, W], "counts": "~~~"}), "alphabet"),
        (FrameEdit(0, "brush", {"size": [H, W], "counts": "0"}), "cover 0 pixels"),
        (FrameEdit(0, "brush", {"size": [H, W], "counts": 7}), "unsupported RLE counts"),
        (FrameEdit(0, "brush", None, Prompt(((1.0, 1.0),), (1,))), "no prompt"),
        (FrameEdit(0, "propagate", None, Prompt(((1.0, 1.0),), (1,))), "mask prompts only"),
        (FrameEdit(0, "propagate", None, Prompt(mask=True)), "needs a mask"),
    ],
)
def test_bad_edits_are_refused_and_write_nothing(annotator, masklet, edit, message):
    with pytest.raises(InvalidEdit, match=message):
        drafts.do_record_edits(annotator, masklet, 0, [click(0, box_mask(1, 1)), edit])
    assert DraftEdit.objects.count() == 0
    masklet.refresh_from_db()
    assert masklet.draft_version == 0


def test_only_the_lease_holder_edits(project, annotator, masklet, reviewer, manager):
    bob = do_create_user("bob", "bob-pass", "annotator")
    do_set_membership(project, bob, "annotator")
    with pytest.raises(leases.NotLeaseHolder):
        drafts.do_record_edits(bob, masklet, 0, [click(0, box_mask(1, 1))])
    with pytest.raises(leases.NotLeaseHolder):
        drafts.do_record_edits(manager, masklet, 0, [click(0, box_mask(1, 1))])
    with pytest.raises(PermissionDenied):
        drafts.do_record_edits(reviewer, masklet, 0, [click(0, box_mask(1, 1))])
    assert DraftEdit.objects.count() == 0


def test_undo_and_redo_step_through_saves(annotator, masklet):
    a, b = box_mask(2, 2), box_mask(6, 6)
    v = drafts.do_record_edits(annotator, masklet, 0, [click(0, a)])
    v = drafts.do_record_edits(annotator, masklet, v, [propagated(0, b), propagated(1, b)])
    v = drafts.do_undo(annotator, masklet, v)
    frames = _decoded(masklet)
    assert sorted(frames) == [0]
    assert np.array_equal(frames[0], a)
    v = drafts.do_undo(annotator, masklet, v)
    assert _decoded(masklet) == {}
    with pytest.raises(Conflict, match="nothing to undo"):
        drafts.do_undo(annotator, masklet, v)
    v = drafts.do_redo(annotator, masklet, v)
    v = drafts.do_redo(annotator, masklet, v)
    frames = _decoded(masklet)
    assert sorted(frames) == [0, 1]
    assert np.array_equal(frames[0], b)
    with pytest.raises(Conflict, match="nothing to redo"):
        drafts.do_redo(annotator, masklet, v)
    # undo, then a new edit: the redo stack is gone
    v = drafts.do_undo(annotator, masklet, v)
    v = drafts.do_record_edits(annotator, masklet, v, [stroke(3, a, "eraser")])
    state = drafts.draft_state(masklet)
    assert not state.can_redo
    assert state.can_undo
    assert sorted(state.frames) == [0, 3]
    assert state.edited_frames == [0, 3]


def test_prompt_log_follows_undo(annotator, masklet):
    v = drafts.do_record_edits(annotator, masklet, 0, [click(0, box_mask(2, 2))])
    box = FrameEdit(4, "video_box", encode_rle(box_mask(4, 4)), Prompt(box=(1, 2, 9.5, 8)))
    v = drafts.do_record_edits(annotator, masklet, v, [box])
    prompts = drafts.draft_prompts(masklet)
    assert [(p["frame_index"], p["tool"]) for p in prompts] == [
        (0, "video_click"),
        (4, "video_box"),
    ]
    assert prompts[0]["points"] == [[5.0, 6.0]]
    assert prompts[0]["labels"] == [1]
    assert prompts[1]["box"] == [1, 2, 9.5, 8]
    v = drafts.do_undo(annotator, masklet, v)
    assert [p["frame_index"] for p in drafts.draft_prompts(masklet)] == [0]
    drafts.do_redo(annotator, masklet, v)
    assert [p["frame_index"] for p in drafts.draft_prompts(masklet)] == [0, 4]


def test_submit_makes_a_revision_and_starts_a_new_draft(annotator, masklet):
    a, b = box_mask(2, 2), box_mask(5, 7)
    v = drafts.do_record_edits(annotator, masklet, 0, [click(0, a)])
    v = drafts.do_record_edits(annotator, masklet, v, [propagated(1, b), propagated(2, None)])
    expected = _decoded(masklet)
    revision = drafts.do_submit_draft(annotator, masklet, v)
    assert revision.number == 1
    assert revision.author == annotator
    assert revision.edited_frames == [0]
    decoded: dict[int, Any] = {
        i: None if f.rle is None else decode_rle(f.rle)
        for i, f in revision_frames(revision).items()
    }
    assert decoded.keys() == expected.keys()
    for i, mask in expected.items():
        assert (mask is None and decoded[i] is None) or np.array_equal(mask, decoded[i])
    masklet.refresh_from_db()
    assert masklet.status == Masklet.Status.SUBMITTED
    assert not DraftEdit.objects.filter(masklet=masklet, revision__isnull=True).exists()
    assert drafts.draft_state(masklet).prompts == []
    # a submitted object is no longer editable; the tab that saw the old version conflicts
    with pytest.raises(Conflict):
        drafts.do_record_edits(annotator, masklet, masklet.draft_version, [click(0, a)])
    with pytest.raises(Conflict):
        drafts.do_submit_draft(annotator, masklet, v)


def test_submit_needs_a_mask(annotator, masklet):
    v = drafts.do_record_edits(annotator, masklet, 0, [propagated(0, None)])
    with pytest.raises(Conflict, match="no mask"):
        drafts.do_submit_draft(annotator, masklet, v)


def test_fix_draft_builds_on_the_reviewed_revision(project, annotator):
    v = video(project)
    masklet = sent_back_for_fix(v, annotator, {0: box_mask(1, 1), 1: box_mask(2, 2)})
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    assert lease.masklet_id == masklet.pk
    masklet.refresh_from_db()
    version = drafts.do_record_edits(annotator, masklet, 0, [stroke(1, box_mask(8, 8))])
    frames = _decoded(masklet)
    assert np.array_equal(frames[0], box_mask(1, 1))
    assert np.array_equal(frames[1], box_mask(8, 8))
    with pytest.raises(Conflict, match="fixed, not deleted"):
        drafts.do_delete_object(annotator, masklet, version)
    revision = drafts.do_submit_draft(annotator, masklet, version)
    assert revision.number == 2
    assert revision.edited_frames == [1]


def test_delete_object_keeps_telemetry(annotator, masklet):
    v = drafts.do_record_edits(annotator, masklet, 0, [click(0, box_mask(2, 2))])
    drafts.do_delete_object(annotator, masklet, v)
    assert not Masklet.objects.filter(pk=masklet.pk).exists()
    kinds = list(InteractionEvent.objects.values_list("kind", "masklet_id"))
    assert kinds == [("object", None), ("click", None), ("object", None)]


def test_saves_extend_the_lease_at_most_once_a_minute(annotator, lease, masklet):
    # given: a lease about to expire
    Assignment.objects.filter(pk=lease.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    # when: two saves in a row
    v1 = drafts.do_record_edits(annotator, masklet, 0, [stroke(0, box_mask(2, 2))])
    extended = Assignment.objects.get(pk=lease.pk).lease_expires_at
    assert extended is not None
    drafts.do_record_edits(annotator, masklet, v1, [stroke(1, box_mask(2, 2))])
    # then: the first moved the expiry a whole lease ahead, the second left it (one write a
    # minute, not one per click)
    assert extended > timezone.now() + leases.DEFAULT_CONFIG.lease - timedelta(seconds=5)
    assert Assignment.objects.get(pk=lease.pk).lease_expires_at == extended
    # and a save more than a minute after the last extension extends it again
    Assignment.objects.filter(pk=lease.pk).update(
        lease_expires_at=extended - drafts.LEASE_TOUCH_INTERVAL - timedelta(seconds=1)
    )
    drafts.do_record_edits(annotator, masklet, v1 + 1, [stroke(2, box_mask(2, 2))])
    again = Assignment.objects.get(pk=lease.pk).lease_expires_at
    assert again is not None
    assert again > extended - timedelta(seconds=1)


def test_save_edits_returns_the_saved_rows(annotator, masklet):
    version, rows = drafts.do_save_edits(
        annotator, masklet, 0, [stroke(0, box_mask(2, 2)), stroke(3, box_mask(4, 4))]
    )
    saved = list(DraftEdit.objects.filter(masklet=masklet).order_by("seq"))
    assert [r.pk for r in rows] == [r.pk for r in saved]
    assert all(r.pk is not None for r in rows)
    assert [(r.version, r.frame_index, r.rle) for r in rows] == [
        (version, r.frame_index, r.rle) for r in saved
    ]
