"""Annotation telemetry: one append-only :class:`~engine.models.InteractionEvent` per action, and
the SAM 2 paper's Table 1 columns computed from them (DESIGN.md section 7).

Per (video, phase, annotator):

- *active seconds per frame*: the gaps between the annotator's consecutive events on the video
  (edits, undo, submit, and the frames the page showed: ``frame_view`` events the workspace
  sends in batches), summed and divided by the video's frame count. Idle gaps are excluded: a
  gap longer than ``idle_seconds`` (a coffee break, a night) contributes nothing, not even the
  threshold; a gap of exactly ``idle_seconds`` still counts;
- *% edited frames*: distinct frames with a click, box, brush or eraser event, over the frame
  count, times 100;
- *clicks per clicked frame*: click and box events (a box is one interaction) over the distinct
  frames that had one;
- *objects* and *submitted masklets*: the distinct objects the annotator's events touched
  (objects deleted since are not counted), and those among them they submitted.

Each event stores the project's phase at the time in its payload, so changing the phase later
does not move old work into the new phase's figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Case, DateTimeField, QuerySet, Value, When
from django.utils import timezone

from engine.errors import InvalidInput
from engine.models import Assignment, InteractionEvent, Masklet, Project, User, Video

from . import leases

IDLE_SECONDS = 60.0
CLICK_KINDS = frozenset({InteractionEvent.Kind.CLICK, InteractionEvent.Kind.BOX})
EDIT_KINDS = CLICK_KINDS | {InteractionEvent.Kind.BRUSH, InteractionEvent.Kind.ERASER}
#: The most frame views one request may record (the page sends a batch every few seconds).
MAX_FRAME_VIEWS = 200
#: How long ago a batched frame view may say it happened (the page holds views a few seconds).
MAX_VIEW_AGE = timedelta(minutes=5)


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
class FrameView:
    """One frame the workspace showed: on the video of ``lease_id``, ``age_ms`` before the
    request that reports it."""

    lease_id: int
    frame_index: int
    age_ms: int = 0


@transaction.atomic
def do_record_frame_views(
    user: User, views: Sequence[FrameView], now: datetime | None = None
) -> list[InteractionEvent]:
    """Record a batch of ``frame_view`` events from the workspace, dated ``now - age``.

    Only the holder of each lease records views on its video: a lease the caller cannot see is
    :class:`~engine.errors.NotFound`, one they see but do not hold (a manager's read-only view,
    a released or finished lease) :class:`~engine.annotation.leases.NotLeaseHolder`. A frame
    outside the video, an age outside ``[0, MAX_VIEW_AGE]`` or more than ``MAX_FRAME_VIEWS``
    views are :class:`~engine.errors.InvalidInput`. Nothing is recorded unless all are valid.
    """
    if len(views) > MAX_FRAME_VIEWS:
        raise InvalidInput(f"send at most {MAX_FRAME_VIEWS} frame views per request")
    now = now or timezone.now()
    held: dict[int, Assignment] = {}
    for lease_id in sorted({v.lease_id for v in views}):
        lease = leases.access_lease(user, lease_id)
        if lease.state != Assignment.State.LEASED or lease.user_id != user.pk:
            raise leases.NotLeaseHolder(
                "Frame views are recorded for the lease's holder only; take the next video again"
            )
        held[lease_id] = lease
    rows: list[InteractionEvent] = []
    dates: list[datetime] = []
    max_age_ms = int(MAX_VIEW_AGE.total_seconds() * 1000)
    for view in views:
        lease = held[view.lease_id]
        video = lease.video
        if not 0 <= view.frame_index < video.frame_count:
            raise InvalidInput(
                f"frame {view.frame_index} is outside the video (frames 0 to "
                f"{video.frame_count - 1})"
            )
        if not 0 <= view.age_ms <= max_age_ms:
            raise InvalidInput(f"age_ms must be between 0 and {max_age_ms}")
        phase = video.project.phase
        rows.append(
            event_row(
                user,
                video,
                InteractionEvent.Kind.FRAME_VIEW,
                view.frame_index,
                phase=phase,
                masklet=lease.masklet if lease.kind == Assignment.Kind.FIX else None,
                assignment=lease,
            )
        )
        dates.append(now - timedelta(milliseconds=view.age_ms))
    if not rows:
        return []
    created = InteractionEvent.objects.bulk_create(rows)
    # created_at is auto_now_add: the insert stamps it with the time of the insert; one UPDATE
    # moves each row back to when the page showed the frame.
    whens = [When(pk=e.pk, then=Value(d)) for e, d in zip(created, dates, strict=True)]
    InteractionEvent.objects.filter(pk__in=[e.pk for e in created]).update(
        created_at=Case(*whens, output_field=DateTimeField())
    )
    for event, date in zip(created, dates, strict=True):
        event.created_at = date
    return created


class _Ratios:
    """The paper's Table 1 columns, from the counts of a row (or of a total)."""

    frame_count: int
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

    def ratios_json(self) -> dict[str, float | None]:
        return {
            "active_seconds_per_frame": self.active_seconds_per_frame,
            "edited_frames_pct": self.edited_frames_pct,
            "clicks_per_clicked_frame": self.clicks_per_clicked_frame,
        }


@dataclass(frozen=True)
class AnnotationStats(_Ratios):
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
    objects: int = 0
    submitted: int = 0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), **self.ratios_json()}


@dataclass(frozen=True)
class PhaseTotals(_Ratios):
    """A phase's rows added up. ``frame_count`` sums the rows' frame counts: a video two
    annotators worked on counts its frames twice, as each annotated every frame."""

    phase: int | None
    annotators: int
    videos: int
    frame_count: int
    events: int
    active_seconds: float
    edited_frames: int
    clicks: int
    clicked_frames: int
    objects: int
    submitted: int

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), **self.ratios_json()}


def active_seconds(times: Sequence[datetime], idle_seconds: float = IDLE_SECONDS) -> float:
    """The sum of the gaps between consecutive ``times`` (sorted) that are at most
    ``idle_seconds``; a longer gap is idle time and contributes nothing."""
    gaps = ((b - a).total_seconds() for a, b in zip(times, times[1:]))
    return sum(gap for gap in gaps if gap <= idle_seconds)


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
        edited = {
            e.frame_index for e in group if e.kind in EDIT_KINDS and e.frame_index is not None
        }
        clicks = [e for e in group if e.kind in CLICK_KINDS]
        objects = {e.masklet_id for e in group if e.masklet_id is not None}
        submitted = {
            e.masklet_id
            for e in group
            if e.kind == InteractionEvent.Kind.SUBMIT and e.masklet_id is not None
        }
        user = group[0].user
        stats.append(
            AnnotationStats(
                video_id=video_id,
                phase=phase,
                user_id=user_id,
                username=user.username if user else None,
                frame_count=group[0].video.frame_count,
                events=len(group),
                active_seconds=active_seconds([e.created_at for e in group], idle_seconds),
                edited_frames=len(edited),
                clicks=len(clicks),
                clicked_frames=len({e.frame_index for e in clicks if e.frame_index is not None}),
                objects=len(objects),
                submitted=len(submitted),
                first_event_at=group[0].created_at,
                last_event_at=group[-1].created_at,
            )
        )
    stats.sort(key=lambda s: (s.video_id, s.phase or 0, s.username or "", s.user_id or 0))
    return stats


def phase_totals(stats: Iterable[AnnotationStats]) -> list[PhaseTotals]:
    """The rows of each phase added up (ratios of sums, not means of ratios), by phase."""
    by_phase: dict[int | None, list[AnnotationStats]] = {}
    for row in stats:
        by_phase.setdefault(row.phase, []).append(row)
    return [
        PhaseTotals(
            phase=phase,
            annotators=len({r.user_id for r in rows}),
            videos=len({r.video_id for r in rows}),
            frame_count=sum(r.frame_count for r in rows),
            events=sum(r.events for r in rows),
            active_seconds=sum(r.active_seconds for r in rows),
            edited_frames=sum(r.edited_frames for r in rows),
            clicks=sum(r.clicks for r in rows),
            clicked_frames=sum(r.clicked_frames for r in rows),
            objects=sum(r.objects for r in rows),
            submitted=sum(r.submitted for r in rows),
        )
        for phase, rows in sorted(by_phase.items(), key=lambda item: item[0] or 0)
    ]


def project_events(project: Project, user: User | None = None) -> QuerySet[InteractionEvent]:
    """The project's annotation events (all, or one annotator's), ready for the statistics."""
    events = InteractionEvent.objects.filter(video__project=project).select_related("video", "user")
    return events if user is None else events.filter(user=user)
