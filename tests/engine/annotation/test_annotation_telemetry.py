"""Telemetry: events recorded by edits, and the paper's Table 1 columns from hand-made logs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from engine.annotation import drafts, leases, telemetry
from engine.models import InteractionEvent
from tests.engine.annotation._annotation import N_FRAMES, box_mask, click, propagated, video

T0 = datetime(2025, 1, 1, 12, 0, 0)


def _event(v, user, kind, frame, seconds, phase=3):
    event = InteractionEvent(
        user=user, video=v, kind=kind, frame_index=frame, payload={"phase": phase}
    )
    event.created_at = T0 + timedelta(seconds=seconds)
    return event


def test_table_1_columns_by_hand(project, annotator, manager):
    v = video(project)  # 10 frames
    events = [
        # alice, phase 3: gaps 2 + 3 + 60 (capped from 500) + 5 = 70 s over 10 frames
        _event(v, annotator, "click", 0, 0),
        _event(v, annotator, "click", 0, 2),
        _event(v, annotator, "propagate", 0, 5),
        _event(v, annotator, "brush", 4, 505),
        _event(v, annotator, "box", 7, 510),
        # the same annotator in phase 1 on the same video is a separate row
        _event(v, annotator, "click", 3, 900, phase=1),
        # maria, one click: no gap, no time
        _event(v, manager, "click", 9, 7),
    ]
    stats = telemetry.annotation_stats(reversed(events), idle_seconds=60)
    assert [(s.phase, s.username) for s in stats] == [(1, "alice"), (3, "alice"), (3, "maria")]
    phase1, alice, maria = stats
    assert alice.active_seconds == pytest.approx(70.0)
    assert alice.active_seconds_per_frame == pytest.approx(7.0)
    # edited frames 0 (click), 4 (brush), 7 (box): 3 of 10
    assert alice.edited_frames == 3
    assert alice.edited_frames_pct == pytest.approx(30.0)
    # clicks: 2 on frame 0, a box on frame 7: 3 clicks over 2 clicked frames
    assert alice.clicks == 3
    assert alice.clicked_frames == 2
    assert alice.clicks_per_clicked_frame == pytest.approx(1.5)
    assert phase1.active_seconds == 0
    assert phase1.clicks_per_clicked_frame == 1.0
    assert maria.to_json()["edited_frames_pct"] == pytest.approx(10.0)
    assert maria.frame_count == N_FRAMES


def test_edits_record_their_events(project, annotator):
    v = video(project)
    lease = leases.do_take_next_video(annotator, project)
    assert lease is not None
    masklet = drafts.do_create_object(annotator, lease)
    version = drafts.do_record_edits(annotator, masklet, 0, [click(2, box_mask(1, 1))])
    version = drafts.do_record_edits(
        annotator, masklet, version, [propagated(i, box_mask(1, 1)) for i in (3, 4, 5)]
    )
    drafts.do_undo(annotator, masklet, version)
    rows = list(
        InteractionEvent.objects.order_by("id").values_list("kind", "frame_index", "payload")
    )
    assert [(k, f) for k, f, _ in rows] == [
        ("object", None),
        ("click", 2),
        ("propagate", 3),
        ("undo", None),
    ]
    assert rows[2][2] == {"phase": 3, "frames": 3, "first": 3, "last": 5, "version": 2}
    assert all(p["phase"] == 3 for _, _, p in rows)
    (stats,) = telemetry.annotation_stats(telemetry.project_events(project, annotator))
    assert stats.video_id == v.pk
    assert stats.clicks == 1
    assert stats.edited_frames == 1
