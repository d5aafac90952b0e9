"""The load benchmark measures what it says: the brush stroke it saves covers the object it
clicks on, and a worker's busy fraction counts only task time inside the step's window
(``benchmarks/load``; the benchmark itself is a script, too long for the test run)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks.load.scene import FRAMES, HEIGHT, WIDTH, brush_rle, click_point, object_box
from benchmarks.load.stack import Stack
from engine.masks.rle import decode_rle, normalize_rle


def test_the_brush_stroke_is_the_object_box_and_clicks_land_inside() -> None:
    for frame in (0, FRAMES // 2, FRAMES - 1):
        x0, y0, x1, y1 = object_box(frame)
        mask = decode_rle(normalize_rle(brush_rle(frame)))
        assert mask.shape == (HEIGHT, WIDTH)
        expected = np.zeros((HEIGHT, WIDTH), dtype=bool)
        expected[y0:y1, x0:x1] = True
        assert np.array_equal(mask, expected)
        for n in range(6):
            x, y = click_point(frame, n)
            assert x0 < x < x1
            assert y0 < y < y1


def test_worker_busy_fraction_counts_task_time_inside_the_window(tmp_path: Path) -> None:
    log = tmp_path / "propagate0.log"
    log.write_text(
        "[2026-12-02 12:00:10,000: INFO/ForkPoolWorker-1] Task workers.propagate_masklet[a] "
        "succeeded in 4.0s: None\n"  # 12:00:06-12:00:10: 4 s inside
        "[2026-12-02 12:00:22,000: INFO/ForkPoolWorker-1] Task workers.propagate_masklet[b] "
        "succeeded in 6.0s: None\n"  # 12:00:16-12:00:22: 4 s inside (ends after the window)
        "[2026-12-02 12:00:04,000: INFO/MainProcess] Task workers.propagate_masklet[c] "
        "received\n"
    )
    stack = Stack.__new__(Stack)
    stack.logs = {"web": tmp_path / "web.log", "propagate0": log}
    stack.args = SimpleNamespace()
    start = datetime(2026, 12, 2, 12, 0, 0)
    busy = stack.busy(start, start + timedelta(seconds=20))
    assert busy == {"propagate0 busy": 0.4}
