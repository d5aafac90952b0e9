"""Annotation statistics pages: the SAM 2 paper's Table 1 columns from the telemetry events.

``/annotate/stats/`` shows the signed-in user their own figures, per project they annotate in,
per video and phase; ``/projects/<id>/annotation-stats/`` shows a project's managers every
annotator's figures and the project's totals per phase. Figures come from
:mod:`engine.annotation.telemetry`; this module only formats them for people (durations in
seconds and minutes, dates in words, no raw ISO or long floats). Access: an outsider's project
is a 404, a member who does not manage it gets a 403 on the manager page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from engine.accounts import access
from engine.annotation import leases, telemetry
from engine.annotation.telemetry import AnnotationStats, PhaseTotals
from engine.models import Project, Role, Video
from webapp.users import page_user

NO_VALUE = "—"


def human_duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds < 9.95:  # what rounds to 10.0 is written "10 s"
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def seconds_per_frame(value: float | None) -> str:
    if value is None:
        return NO_VALUE
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def percent(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.1f} %"


def ratio(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.2f}"


def phase_label(phase: int | None) -> str:
    if phase is None or phase not in Project.Phase.values:
        return "Unknown phase"
    return str(Project.Phase(phase).label)


def _figures(row: AnnotationStats | PhaseTotals) -> dict[str, Any]:
    return {
        "phase": row.phase,
        "phase_label": phase_label(row.phase),
        "seconds_per_frame": seconds_per_frame(row.active_seconds_per_frame),
        "edited_pct": percent(row.edited_frames_pct),
        "clicks_per_frame": ratio(row.clicks_per_clicked_frame),
        "frames": row.frame_count,
        "edited_frames": row.edited_frames,
        "clicks": row.clicks,
        "clicked_frames": row.clicked_frames,
        "objects": row.objects,
        "submitted": row.submitted,
        "active": human_duration(row.active_seconds),
    }


def _rows(stats: Iterable[AnnotationStats], videos: dict[int, Video]) -> list[dict[str, Any]]:
    rows = []
    for row in stats:
        video = videos.get(row.video_id)
        rows.append(
            {
                **_figures(row),
                "video_id": row.video_id,
                "video_name": video.name if video else f"video {row.video_id}",
                "username": row.username or "(deleted user)",
                "last_event_at": row.last_event_at,
            }
        )
    rows.sort(key=lambda r: (r["video_name"], r["video_id"], r["phase"] or 0))
    return rows


def _totals(stats: Iterable[AnnotationStats]) -> list[dict[str, Any]]:
    return [
        {**_figures(t), "annotators": t.annotators, "videos": t.videos}
        for t in telemetry.phase_totals(stats)
    ]


def _videos(project: Project) -> dict[int, Video]:
    return {v.pk: v for v in project.videos.only("id", "name")}


@login_required
def my_stats(request: HttpRequest) -> HttpResponse:
    """The user's own figures, per project they annotate in (or once annotated in)."""
    user = page_user(request)
    sections = []
    for project in access.projects_for_user(user).order_by("name"):
        role = access.project_role(user, project)
        stats = telemetry.annotation_stats(telemetry.project_events(project, user))
        if role not in leases.ANNOTATE_ROLES and not stats:
            continue
        sections.append(
            {
                "project": project,
                "is_manager": role == Role.MANAGER,
                "rows": _rows(stats, _videos(project)),
                "totals": _totals(stats),
            }
        )
    return render(
        request,
        "annotate/stats.html",
        {"sections": sections, "idle_seconds": int(telemetry.IDLE_SECONDS)},
    )


@login_required
def project_stats(request: HttpRequest, project_id: int) -> HttpResponse:
    """Every annotator's figures in the project, and its totals per phase (managers only)."""
    project = access.access_project_as_manager(page_user(request), project_id)
    stats = telemetry.annotation_stats(telemetry.project_events(project))
    videos = _videos(project)
    per_user: dict[int | None, list[AnnotationStats]] = {}
    for row in stats:
        per_user.setdefault(row.user_id, []).append(row)
    annotators = [
        {
            "username": rows[0].username or "(deleted user)",
            "user_id": user_id,
            "rows": _rows(rows, videos),
            "totals": _totals(rows),
        }
        for user_id, rows in per_user.items()
    ]
    annotators.sort(key=lambda a: (a["username"], a["user_id"] or 0))
    return render(
        request,
        "annotate/stats_project.html",
        {
            "project": project,
            "annotators": annotators,
            "totals": _totals(stats),
            "idle_seconds": int(telemetry.IDLE_SECONDS),
        },
    )
