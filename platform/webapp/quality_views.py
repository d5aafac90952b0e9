"""A project's quality-checks page (``/projects/<id>/quality/``): the estimator (verdicts it
learned from, cross-validated AUC), how many masklets were auto-accepted, and, for managers,
the auto-accept switch with its threshold and a retrain-now button. Members read; outsiders
get 404 like every project page; non-managers posting get 403."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from engine.accounts import access
from engine.errors import EngineError, InvalidInput
from engine.models import Masklet, Project, User
from engine.quality import auto_accept, reports, training
from webapp.users import page_user


@login_required
def quality_page(request: HttpRequest, project_id: int) -> HttpResponse:
    user = page_user(request)
    project = access.access_project(user, project_id)
    state = reports.project_quality(project)
    accepted = (
        Masklet.objects.filter(
            video__project=project, current_revision__quality__auto_accepted=True
        )
        .select_related("video", "current_revision__quality")
        .order_by("-current_revision__quality__auto_accepted_at")[:50]
    )
    return render(
        request,
        "quality/project.html",
        {
            "project": project,
            "state": state.as_json(),
            "is_manager": auto_accept.may_manage_quality(user, project),
            "min_per_class": settings.QUALITY_MIN_VERDICTS_PER_CLASS,
            "auto_accepted": accepted,
        },
    )


def _manager_project(request: HttpRequest, project_id: int) -> tuple[User, Project]:
    user = page_user(request)
    project = access.access_project(user, project_id)
    if not auto_accept.may_manage_quality(user, project):
        raise access.AccessDenied("Only the project's managers may change the quality checks")
    return user, project


def _threshold(raw: str) -> float | None:
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidInput("the threshold must be a finite number")
    return value


@login_required
@require_POST
def auto_accept_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    user, project = _manager_project(request, project_id)
    try:
        auto_accept.do_set_auto_accept(
            user,
            project,
            enabled=request.POST.get("auto_accept") == "on",
            threshold=_threshold(request.POST.get("auto_accept_threshold", "")),
        )
    except EngineError as exc:
        messages.error(request, f"Auto-accept not changed: {exc}")
    else:
        messages.success(request, "Auto-accept settings saved")
    return redirect("project-quality", project_id=project.pk)


@login_required
@require_POST
def retrain(request: HttpRequest, project_id: int) -> HttpResponse:
    _, project = _manager_project(request, project_id)
    policy = training.QualityPolicy(
        min_per_class=settings.QUALITY_MIN_VERDICTS_PER_CLASS,
        retrain_after=settings.QUALITY_RETRAIN_AFTER_VERDICTS,
    )
    if training.do_train_quality_model(project, policy, force=True) is None:
        messages.error(
            request,
            f"Not trained: it needs {policy.min_per_class} verdicts of each kind "
            "(accepted, and unsatisfactory or rejected)",
        )
    else:
        messages.success(request, "Quality estimator retrained")
    return redirect("project-quality", project_id=project.pk)


#: Included from ``webapp/urls.py``.
urlpatterns = [
    path("projects/<int:project_id>/quality/", quality_page, name="project-quality"),
    path(
        "projects/<int:project_id>/quality/auto-accept/",
        auto_accept_settings,
        name="project-quality-auto-accept",
    ),
    path("projects/<int:project_id>/quality/retrain/", retrain, name="project-quality-retrain"),
]
