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
        # alice, phase 3: gaps 2 + 3 + 500 + 5 + 60; the 500 s gap is idle (over 60 s) and
        # contributes nothing, the 60 s gap is exactly the threshold and counts:
        # 2 + 3 + 5 + 60 = 70 s over 10 frames
        _event(v, annotator, "click", 0, 0),
        _event(v, annotator, "click", 0, 2),
        _event(v, annotator, "propagate", 0, 5),
        _event(v, annotator, "brush", 4, 505),
        _event(v, annotator, "box", 7, 510),
        _event(v, annotator, "frame_view", 8, 570),
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
    assert alice.events == 6
    assert (alice.first_event_at, alice.last_event_at) == (T0, T0 + timedelta(seconds=570))
    # edited frames 0 (click), 4 (brush), 7 (box): 3 of 10; a frame view edits nothing
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


def test_idle_gaps_are_excluded_not_capped(project, annotator):
    v = video(project)
    # gaps 30, 61 (idle), 3600 (idle), 0.5: only 30.5 s of work
    times = [0, 30, 91, 3691, 3691.5]
    events = [_event(v, annotator, "frame_view", i % N_FRAMES, t) for i, t in enumerate(times)]
    (row,) = telemetry.annotation_stats(events, idle_seconds=60)
    assert row.active_seconds == pytest.approx(30.5)
    assert row.active_seconds_per_frame == pytest.approx(3.05)
    # a coffee break longer than the threshold adds nothing at all
    assert telemetry.active_seconds([T0, T0 + timedelta(seconds=61)], idle_seconds=60) == 0
    assert telemetry.active_seconds([T0, T0 + timedelta(seconds=60)], idle_seconds=60) == 60
    assert telemetry.active_seconds([T0], idle_seconds=60) == 0
    # only viewing frames: no edited frame, no click (clicks per clicked frame undefined)
    assert (row.edited_frames_pct, row.clicks_per_clicked_frame) == (0.0, None)


def test_phase_totals_are_ratios_of_sums(project, annotator, manager):
    a, b = video(project, "a.mp4"), video(project, "b.mp4")  # 10 frames each
    events = [
        # alice on a: 10 s, clicks on frames 1, 1, 2 -> 3 clicks on 2 frames, 2 edited
        _event(a, annotator, "click", 1, 0),
        _event(a, annotator, "click", 1, 4),
        _event(a, annotator, "click", 2, 10),
        # maria on a: 20 s, a brush on frame 5 -> 1 edited, no click
        _event(a, manager, "frame_view", 5, 0),
        _event(b, manager, "frame_view", 0, 1000, phase=1),  # another phase, another total
        _event(a, manager, "brush", 5, 20),
        # alice on b: 30 s, one box on frame 9
        _event(b, annotator, "frame_view", 0, 100),
        _event(b, annotator, "box", 9, 130),
    ]
    stats = telemetry.annotation_stats(events, idle_seconds=60)
    phase1, phase3 = telemetry.phase_totals(stats)
    assert (phase1.phase, phase1.annotators, phase1.videos, phase1.frame_count) == (1, 1, 1, 10)
    assert phase1.active_seconds == 0
    assert (phase3.phase, phase3.annotators, phase3.videos) == (3, 2, 2)
    # three rows of 10 frames: 30 frames, 10 + 20 + 30 = 60 s -> 2 s per frame
    assert phase3.frame_count == 30
    assert phase3.active_seconds == pytest.approx(60.0)
    assert phase3.active_seconds_per_frame == pytest.approx(2.0)
    # edited 2 + 1 + 1 = 4 of 30 frames
    assert phase3.edited_frames_pct == pytest.approx(100 * 4 / 30)
    # clicks 3 + 0 + 1 = 4 on 2 + 0 + 1 = 3 frames (not the mean of 1.5 and 1.0)
    assert phase3.clicks_per_clicked_frame == pytest.approx(4 / 3)
    assert phase3.to_json()["clicks"] == 4


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
