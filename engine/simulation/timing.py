"""The simulated annotator's clock and the paper's Table 1 columns (DESIGN.md section 7).

Simulated seconds, never wall time. The SAM 2 paper's timing model (section 6.1, after EVA-VOS):
1 s to locate the object on a frame the annotator works on, 1.5 s per click, 30 s to review a
300-frame video (10 frames per second). The paper gives no price for a brush or eraser stroke;
ours (:attr:`TimingModel.stroke_seconds`) is an assumption, stated wherever figures are shown.

Table 1's columns, per phase (P1 section 5.1):

- *time per frame*: the annotation seconds of every masklet over the frames they cover
  (a masklet covers each frame of its video);
- *edited frames*: the average, over masklets, of the percentage of frames edited by hand
  (a click, a box, a mask drawn from scratch, a brush or eraser stroke);
- *clicks per clicked frame*: all clicks over all frames that had at least one click.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TimingModel:
    """Seconds per action of a simulated annotator or reviewer."""

    locate_seconds: float = 1.0
    click_seconds: float = 1.5
    #: One brush or eraser stroke fixing one error region (our assumption; the paper has none).
    stroke_seconds: float = 4.0
    #: Watching a video through once, per 300 frames (the paper's T_exam).
    review_seconds_per_300_frames: float = 30.0

    def review_seconds(self, frames: int) -> float:
        """Seconds to watch ``frames`` frames once."""
        return self.review_seconds_per_300_frames * frames / 300.0


DEFAULT_TIMING = TimingModel()


@dataclass
class MaskletWork:
    """What one annotator did on one masklet (all sessions on it, fixes included).

    ``located``: frames the annotator worked on (each costs the locate time once per visit);
    ``clicked`` / ``edited``: distinct frame indices with a click / with any hand edit;
    ``reviewed``: frames watched after each propagation (a frame watched twice counts twice).
    """

    frame_count: int
    clicks: int = 0
    strokes: int = 0
    located: int = 0
    reviewed: int = 0
    clicked: set[int] = field(default_factory=set)
    edited: set[int] = field(default_factory=set)

    def seconds_by_action(self, timing: TimingModel = DEFAULT_TIMING) -> dict[str, float]:
        """The simulated seconds split by what they paid for."""
        return {
            "locate": timing.locate_seconds * self.located,
            "clicks": timing.click_seconds * self.clicks,
            "strokes": timing.stroke_seconds * self.strokes,
            "review": timing.review_seconds(self.reviewed),
        }

    def seconds(self, timing: TimingModel = DEFAULT_TIMING) -> float:
        return sum(self.seconds_by_action(timing).values())

    @property
    def edited_pct(self) -> float:
        return 100.0 * len(self.edited) / self.frame_count if self.frame_count else 0.0


@dataclass(frozen=True)
class TableRow:
    """The paper's Table 1 columns for a set of masklets (a phase in a round)."""

    masklets: int
    frames: int
    seconds: float
    seconds_per_frame: float | None
    edited_frames_pct: float | None
    clicks: int
    clicked_frames: int
    clicks_per_clicked_frame: float | None
    strokes: int
    #: ``seconds`` split by action (locate, clicks, strokes, review), summed over the masklets.
    seconds_by_action: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "masklets": self.masklets,
            "frames": self.frames,
            "seconds": self.seconds,
            "seconds_per_frame": self.seconds_per_frame,
            "edited_frames_pct": self.edited_frames_pct,
            "clicks": self.clicks,
            "clicked_frames": self.clicked_frames,
            "clicks_per_clicked_frame": self.clicks_per_clicked_frame,
            "strokes": self.strokes,
            "seconds_by_action": dict(self.seconds_by_action),
        }


def table_row(works: Iterable[MaskletWork], timing: TimingModel = DEFAULT_TIMING) -> TableRow:
    """Sums of the works, then the ratios (ratios of sums; edited frames: mean per masklet)."""
    works = list(works)
    frames = sum(w.frame_count for w in works)
    by_action: dict[str, float] = {}
    for work in works:
        for action, value in work.seconds_by_action(timing).items():
            by_action[action] = by_action.get(action, 0.0) + value
    seconds = sum(by_action.values())
    clicks = sum(w.clicks for w in works)
    clicked = sum(len(w.clicked) for w in works)
    return TableRow(
        masklets=len(works),
        frames=frames,
        seconds=seconds,
        seconds_per_frame=seconds / frames if frames else None,
        edited_frames_pct=sum(w.edited_pct for w in works) / len(works) if works else None,
        clicks=clicks,
        clicked_frames=clicked,
        clicks_per_clicked_frame=clicks / clicked if clicked else None,
        strokes=sum(w.strokes for w in works),
        seconds_by_action=by_action,
    )
