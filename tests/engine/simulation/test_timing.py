"""The simulated clock and the paper's Table 1 columns (engine.simulation.timing)."""

from __future__ import annotations

import pytest

from engine.simulation.timing import MaskletWork, TimingModel, table_row


def test_review_time_is_30_seconds_per_300_frames() -> None:
    timing = TimingModel()
    assert timing.review_seconds(300) == pytest.approx(30.0)
    assert timing.review_seconds(24) == pytest.approx(2.4)


def test_masklet_seconds_price_each_action() -> None:
    work = MaskletWork(frame_count=10, clicks=4, strokes=2, located=3, reviewed=30)
    timing = TimingModel(locate_seconds=1.0, click_seconds=1.5, stroke_seconds=4.0)
    # 3 locates + 4 clicks + 2 strokes + watching 30 frames at 10 frames per second
    assert work.seconds(timing) == pytest.approx(3 * 1.0 + 4 * 1.5 + 2 * 4.0 + 3.0)


def test_table_row_is_ratios_of_sums_and_mean_edited_share() -> None:
    a = MaskletWork(frame_count=10, clicks=6, located=2, clicked={0, 5}, edited={0, 5})
    b = MaskletWork(frame_count=20, clicks=1, strokes=1, located=1, clicked={3}, edited={3, 4})
    row = table_row([a, b], TimingModel(stroke_seconds=5.0))
    assert row.masklets == 2
    assert row.frames == 30
    assert row.seconds == pytest.approx((2 + 6 * 1.5) + (1 + 1.5 + 5.0))
    assert row.seconds_per_frame == pytest.approx(row.seconds / 30)
    # the paper's "average percent of edited frames per masklet": (20 % + 10 %) / 2
    assert row.edited_frames_pct == pytest.approx(15.0)
    assert row.clicks == 7
    assert row.clicked_frames == 3
    assert row.clicks_per_clicked_frame == pytest.approx(7 / 3)
    assert row.strokes == 1
    assert row.seconds_by_action == pytest.approx(
        {"locate": 3.0, "clicks": 7 * 1.5, "strokes": 5.0, "review": 0.0}
    )


def test_empty_row_has_no_ratios() -> None:
    row = table_row([])
    assert row.frames == 0
    assert row.seconds_per_frame is None
    assert row.edited_frames_pct is None
    assert row.clicks_per_clicked_frame is None
