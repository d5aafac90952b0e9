"""Annotation telemetry: one append-only :class:`~engine.models.InteractionEvent` per action, and
the SAM 2 paper's Table 1 columns computed from them (DESIGN.md section 7).

Per (video, phase, annotator):

- *active seconds per frame*: the gaps between the annotator's consecutive events on the video,
  each capped at ``idle_seconds`` (a coffee break counts as one idle threshold, not as work),
  summed and divided by the video's frame count;
- *% edited frames*: distinct frames with a click, box, brush or eraser event, over the frame
  count, times 100;
- *clicks per clicked frame*: click and box events (a box is one interaction) over the distinct
  frames that had one.

Each event stores the project's phase at the time in its payload, so changing the phase later
does not move old work into the new phase's figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import QuerySet

from engine.models import Assignment, InteractionEvent, Masklet, Project, User, Video

IDLE_SECONDS = 60.0
CLICK_KINDS = frozenset({InteractionEvent.Kind.CLICK, InteractionEvent.Kind.BOX})
EDIT_KINDS = CLICK_KINDS | {InteractionEvent.Kind.BRUSH, InteractionEvent.Kind.ERASER}


def event_row(
    user: User | None,
    video: Video,
    kind: str,
    frame_index: int | None,
    payload: Mapping[str, Any] | None = None,
    *,
    phase: int,
    masklet: Masklet | None = None,
    assignment: Assignment | None = None,
) -> InteractionEvent:
    """An unsaved event, for callers that write many at once with ``bulk_create``."""
    return InteractionEvent(
        user=user,
        video=video,
        masklet=masklet,
        assignment=assignment,
        kind=kind,
        frame_index=frame_index,
        payload={"phase": phase, **(payload or {})},
    )


def record_event(
    user: User | None,
    video: Video,
    kind: str,
    frame_index: int | None,
    payload: Mapping[str, Any] | None = None,
    masklet: Masklet | None = None,
    assignment: Assignment | None = None,
) -> InteractionEvent:
    """Append one event; the payload gains the project's current ``phase``."""
    if kind not in InteractionEvent.Kind.values:
        raise ValueError(f"unknown event kind {kind!r}")
    phase = Project.objects.values_list("phase", flat=True).get(pk=video.project_id)
    event = event_row(
        user, video, kind, frame_index, payload, phase=phase, masklet=masklet, assignment=assignment
    )
    event.save()
    return event


@dataclass(frozen=True)
class AnnotationStats:
    video_id: int
    phase: int | None
    user_id: int | None
    username: str | None
    frame_count: int
    events: int
    active_seconds: float
    edited_frames: int
    clicks: int
    clicked_frames: int

    @property
    def active_seconds_per_frame(self) -> float | None:
        return self.active_seconds / self.frame_count if self.frame_count else None

    @property
    def edited_frames_pct(self) -> float | None:
        return 100.0 * self.edited_frames / self.frame_count if self.frame_count else None

    @property
    def clicks_per_clicked_frame(self) -> float | None:
        return self.clicks / self.clicked_frames if self.clicked_frames else None

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "active_seconds_per_frame": self.active_seconds_per_frame,
            "edited_frames_pct": self.edited_frames_pct,
            "clicks_per_clicked_frame": self.clicks_per_clicked_frame,
        }


def annotation_stats(
    events: Iterable[InteractionEvent], idle_seconds: float = IDLE_SECONDS
) -> list[AnnotationStats]:
    """Table 1 columns per (video, phase, annotator), ordered by video, phase and username.

    ``events`` must have ``video`` and ``user`` loaded (``select_related``) to avoid a query
    per event; their order does not matter.
    """
    groups: dict[tuple[int, int | None, int | None], list[InteractionEvent]] = {}
    for event in events:
        phase = event.payload.get("phase") if isinstance(event.payload, dict) else None
        key = (event.video_id, phase if isinstance(phase, int) else None, event.user_id)
        groups.setdefault(key, []).append(event)
    stats = []
    for (video_id, phase, user_id), group in groups.items():
        group.sort(key=lambda e: (e.created_at, e.pk or 0))
        active = sum(
            min((b.created_at - a.created_at).total_seconds(), idle_seconds)
            for a, b in zip(group, group[1:])
        )
        edited = {
            e.frame_index for e in group if e.kind in EDIT_KINDS and e.frame_index is not None
        }
        clicks = [e for e in group if e.kind in CLICK_KINDS]
        user = group[0].user
        stats.append(
            AnnotationStats(
                video_id=video_id,
                phase=phase,
                user_id=user_id,
                username=user.username if user else None,
                frame_count=group[0].video.frame_count,
                events=len(group),
                active_seconds=active,
                edited_frames=len(edited),
                clicks=len(clicks),
                clicked_frames=len({e.frame_index for e in clicks if e.frame_index is not None}),
            )
        )
    stats.sort(key=lambda s: (s.video_id, s.phase or 0, s.username or "", s.user_id or 0))
    return stats


def project_events(project: Project, user: User | None = None) -> QuerySet[InteractionEvent]:
    """The project's annotation events (all, or one annotator's), ready for the statistics."""
    events = InteractionEvent.objects.filter(video__project=project).select_related("video", "user")
    return events if user is None else events.filter(user=user)
