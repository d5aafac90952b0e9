"""The models page (``/models/``): versions with metrics, lineage and status, which one serves
(and whether it is the demo model), register a checkpoint, promote and roll back (managers, each
after a confirmation page). Project members read it; other accounts get 403.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from engine.accounts import access
from engine.errors import EngineError
from engine.training import overview, versions
from model.config import CONFIGS
from webapp.users import page_user

SCORE_COLUMNS = (
    ("jf_1", "J&F 1 click"),
    ("jf_3", "J&F 3 clicks"),
    ("jf_5", "J&F 5 clicks"),
    ("clicks_to_075", "clicks to IoU 0.75"),
    ("jf_mask", "J&F from mask"),
)


def when(iso: str | None) -> datetime | None:
    """An ISO timestamp from a summary as a datetime, for the ``date`` filter."""
    return datetime.fromisoformat(iso) if iso else None


def _scores(metrics: dict) -> list[str]:
    held = metrics.get("heldout") or {}
    return [
        f"{held[key]:.3f}" if isinstance(held.get(key), int | float) else "—"
        for key, _ in SCORE_COLUMNS
    ]


@login_required
def models_page(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    data = overview.models_overview(user)
    by_id = {v["id"]: v for v in data["versions"]}
    rows = [
        {
            **v,
            "scores": _scores(v["metrics"]),
            "parent_name": by_id.get(v["parent"], {}).get("name"),
            "created": when(v["created_at"]),
        }
        for v in data["versions"]
    ]
    return render(
        request,
        "training/models.html",
        {
            "serving": data["serving"],
            "rows": rows,
            "rollback_to": by_id.get(data["rollback_to"]) if data["rollback_to"] else None,
            "can_manage": versions.can_manage_models(user),
            "configs": sorted(CONFIGS),
            "score_columns": [label for _, label in SCORE_COLUMNS],
            "projects": access.projects_for_user(user).order_by("name"),
            "history": versions.promotion_history(20),
        },
    )


@login_required
@require_POST
def register(request: HttpRequest) -> HttpResponse:
    """Register an uploaded checkpoint as a candidate (validated, sha256, stored)."""
    user = page_user(request)
    versions.check_may_manage_models(user)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise versions.InvalidInput("choose a checkpoint file (.pt) to upload")
        version = versions.do_register_upload(
            user,
            upload,
            name=request.POST.get("name", ""),
            config=request.POST.get("config", ""),
        )
    except EngineError as exc:
        messages.error(request, f"Not registered: {exc}")
    else:
        messages.success(
            request, f"Registered {version.name!r} as a candidate (sha256 {version.sha256[:12]}…)"
        )
    return redirect("models")


@login_required
@require_http_methods(["GET", "POST"])
def promote(request: HttpRequest, version_id: int) -> HttpResponse:
    """GET: the confirmation page; POST: promote."""
    user = page_user(request)
    version = versions.access_version(user, version_id)
    versions.check_may_manage_models(user)
    current = versions.promoted_version()
    if request.method == "GET":
        return render(
            request,
            "training/confirm.html",
            {
                "action": "promote",
                "title": f"Promote {version.name}?",
                "text": (
                    f"New annotation sessions and jobs will use {version.name}"
                    + (f" instead of {current.name}, which retires." if current else ".")
                ),
                "button": "Yes, promote",
            },
        )
    try:
        versions.do_promote(user, version, reason=request.POST.get("reason", ""))
    except EngineError as exc:
        messages.error(request, f"Not promoted: {exc}")
    else:
        messages.success(request, f"{version.name} is promoted; new sessions use it")
    return redirect("models")


@login_required
@require_http_methods(["GET", "POST"])
def rollback(request: HttpRequest) -> HttpResponse:
    """GET: the confirmation page; POST: re-promote the previous version."""
    user = page_user(request)
    versions.check_may_manage_models(user)
    current = versions.promoted_version()
    target = versions.rollback_target(current)
    if request.method == "GET":
        if current is None or target is None:
            messages.error(request, "There is no earlier promoted version to roll back to")
            return redirect("models")
        return render(
            request,
            "training/confirm.html",
            {
                "action": "rollback",
                "title": f"Roll back to {target.name}?",
                "text": f"{current.name} retires and {target.name} serves new sessions again.",
                "button": "Yes, roll back",
            },
        )
    try:
        restored = versions.do_rollback(user)
    except EngineError as exc:
        messages.error(request, f"Not rolled back: {exc}")
    else:
        messages.success(request, f"Rolled back: {restored.name} is promoted again")
    return redirect("models")
