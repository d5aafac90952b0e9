"""A project's rounds page (``/projects/<id>/rounds/``): rounds with status, progress and loss
curve (the page polls ``/api/projects/<id>/rounds/`` while one runs), start and cancel (managers),
the round settings form (managers) and the simulation plots stored under
``simulation/<project id>/``. Members read; outsiders get 404 like every project page.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from engine.accounts import access
from engine.errors import EngineError
from engine.models import Role
from engine.training import overview, rounds, triggers
from webapp.model_views import when
from webapp.users import page_user

SVG_W, SVG_H, PAD = 320, 120, 6


def loss_curve_points(curve: list[list[float]], width: int = SVG_W, height: int = SVG_H) -> str:
    """The ``points`` of an SVG polyline for ``[[step, loss], ...]`` (empty if < 2 points)."""
    if len(curve) < 2:
        return ""
    steps = [float(p[0]) for p in curve]
    losses = [float(p[1]) for p in curve]
    s0, s1 = min(steps), max(steps)
    l0, l1 = min(losses), max(losses)
    span_s = (s1 - s0) or 1.0
    span_l = (l1 - l0) or 1.0
    return " ".join(
        f"{PAD + (s - s0) / span_s * (width - 2 * PAD):.1f},"
        f"{PAD + (1 - (v - l0) / span_l) * (height - 2 * PAD):.1f}"
        for s, v in zip(steps, losses, strict=True)
    )


def _round_row(summary: dict[str, Any]) -> dict[str, Any]:
    curve = summary.get("loss_curve") or []
    return {
        **summary,
        "points": loss_curve_points(curve),
        "last_loss": f"{curve[-1][1]:.4f}" if curve else "—",
        "candidate": summary["metrics"].get("candidate") or {},
        "baseline_scores": summary["metrics"].get("promoted") or {},
        "started": when(summary.get("started_at")),
    }


@login_required
def rounds_page(request: HttpRequest, project_id: int) -> HttpResponse:
    user = page_user(request)
    project = access.access_project(user, project_id)
    data = overview.rounds_overview(project)
    return render(
        request,
        "training/rounds.html",
        {
            "project": project,
            "is_manager": access.project_role(user, project) == Role.MANAGER,
            "active": data["active"],
            "settings": data["settings"],
            "new_verified": data["new_verified_masklets"],
            "rounds": [_round_row(r) for r in data["rounds"]],
            "plots": [{"key": k, "name": k.rsplit("/", 1)[-1]} for k in data["plots"]],
            "svg_w": SVG_W,
            "svg_h": SVG_H,
        },
    )


@login_required
@require_POST
def start_round(request: HttpRequest, project_id: int) -> HttpResponse:
    user = page_user(request)
    project = access.access_project_as_manager(user, project_id)
    raw = request.POST.get("steps", "").strip()
    try:
        steps = int(raw) if raw else None
        job = rounds.do_start_round(user, project, steps=steps)
    except ValueError:
        messages.error(request, "Steps must be a whole number")
    except EngineError as exc:
        messages.error(request, f"Round not started: {exc}")
    else:
        messages.success(request, f"Round queued (job {job.pk})")
    return redirect("project-rounds", project_id=project.pk)


@login_required
@require_POST
def cancel_round(request: HttpRequest, project_id: int) -> HttpResponse:
    user = page_user(request)
    project = access.access_project_as_manager(user, project_id)
    job = rounds.active_round_job(project)
    if job is None:
        messages.error(request, "No round is queued or running")
    else:
        rounds.do_cancel_round(user, job)
        messages.success(request, "Cancel requested; the round stops after its current step")
    return redirect("project-rounds", project_id=project.pk)


@login_required
@require_POST
def round_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    user = page_user(request)
    project = access.access_project_as_manager(user, project_id)
    post = request.POST
    try:
        triggers.do_update_round_settings(
            user,
            project,
            enabled=post.get("enabled") == "on",
            min_new_masklets=post.get("min_new_masklets") or None,
            interval_hours=post.get("interval_hours") or None,
            steps=post.get("steps") or None,
        )
    except EngineError as exc:
        messages.error(request, f"Settings not saved: {exc}")
    else:
        messages.success(request, "Round settings saved")
    return redirect("project-rounds", project_id=project.pk)


@login_required
def plot(request: HttpRequest, project_id: int, name: str) -> FileResponse:
    """A simulation plot of the project (members only)."""
    project = access.access_project(page_user(request), project_id)
    if "/" in name or ".." in name or not name.lower().endswith(overview.PLOT_SUFFIXES):
        raise Http404("No such plot")
    key = f"simulation/{project.pk}/{name}"
    if not default_storage.exists(key):
        raise Http404("No such plot")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(default_storage.open(key, "rb"), content_type=content_type)
