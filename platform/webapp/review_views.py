"""Pages for verification: review queue, review player, verdict history, fixes, review stats.

The verdict and fix forms are parsed by the API's serializers (:mod:`api.review_serializers`)
and re-rendered with the error inline (status from ``api.errors.status_for``); every other
domain error propagates to ``webapp.errors.DomainErrorMiddleware``.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from api import review_payloads as payloads
from api.errors import status_for
from api.review_serializers import FixResubmitSerializer, VerdictSerializer, validated
from engine.accounts import access
from engine.errors import EngineError, InvalidInput, NotFound
from engine.models import Assignment, Masklet, MaskletRevision, Project, Review, Role, User
from engine.review import fixes, leases, queue, stats, verdicts
from engine.review.errors import SelfReview
from engine.review.waiting import not_in_queue
from webapp.users import page_user

#: Form fields that carry JSON text (the pages' scripts fill them).
_JSON_FIELDS = ("flagged_frames", "frame_notes", "frames")


def _form_data(request: HttpRequest) -> dict[str, Any]:
    """The POSTed form as the dict the API serializers read: JSON fields decoded, blank ones
    left out (so the serializer's default applies)."""
    data: dict[str, Any] = {}
    for name in request.POST:
        raw = request.POST.get(name, "")
        if name in _JSON_FIELDS:
            if not raw.strip():
                continue
            try:
                data[name] = json.loads(raw)
            except json.JSONDecodeError:
                raise InvalidInput(f"{name} is not valid JSON") from None
        else:
            data[name] = raw
    return data


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    """The reviewer's start page: per project, how many masklets wait, and a Take-next button."""
    user = page_user(request)
    rows = []
    for project in access.projects_for_user(user):
        role = access.project_role(user, project)
        if role not in queue.REVIEW_ROLES:
            continue
        waiting = queue.review_queue(user, project)
        rows.append(
            {
                "project": project,
                "count": waiting.count(),
                "not_in_queue": not_in_queue(user, project),
                "masklets": list(waiting[:20]),
                "is_manager": role == Role.MANAGER,
            }
        )
    return render(request, "review/queue.html", {"rows": rows})


@login_required
@require_POST
def take_next(request: HttpRequest, project_id: int) -> HttpResponse:
    user = page_user(request)
    project = access.access_project(user, project_id)
    masklet = queue.do_take_next_review(user, project)
    if masklet is None:
        messages.info(request, f"Nothing to review in {project.name} right now.")
        return redirect("review-queue")
    return redirect("review-masklet", masklet_id=masklet.pk)


def _review_context(masklet: Masklet, **extra: Any) -> dict[str, Any]:
    return {
        "masklet": masklet,
        "video": masklet.video,
        "payload": payloads.review_payload(masklet),
        "history": payloads.review_history(masklet),
        "verdicts": Review.Verdict.choices,
        **extra,
    }


@login_required
def review_masklet(request: HttpRequest, masklet_id: int) -> HttpResponse:
    """Play the masklet over its frames; flag frames; give a verdict (POST)."""
    user = page_user(request)
    masklet = queue.access_masklet(user, masklet_id)
    project: Project = masklet.video.project
    if not queue.can_review(user, project):
        raise access.AccessDenied("Only the project's reviewers and managers review masklets")
    revision = masklet.current_revision
    if revision is not None and queue.authored_upto(user, revision):
        raise SelfReview("You cannot review a masklet you worked on")
    if request.method == "POST":
        return _post_verdict(request, user, masklet)
    held = queue.do_open_review(user, masklet)
    return render(request, "review/masklet.html", _review_context(masklet, held=held))


def _post_verdict(request: HttpRequest, user: User, masklet: Masklet) -> HttpResponse:
    try:
        form = validated(VerdictSerializer, _form_data(request))
        revision = MaskletRevision.objects.filter(pk=form["revision"], masklet=masklet).first()
        if revision is None:
            raise NotFound(f"masklet {masklet.pk} has no revision {form['revision']}")
        verdicts.do_review(
            revision,
            user,
            form["verdict"],
            form["flagged_frames"],
            form["frame_notes"],
            form["comment"],
        )
    except EngineError as exc:
        masklet.refresh_from_db()
        context = _review_context(masklet, error=str(exc))
        return render(request, "review/masklet.html", context, status=status_for(exc))
    masklet.refresh_from_db()
    messages.success(request, f"Verdict saved: masklet {masklet.pk} is now {masklet.status}.")
    return redirect("review-history", masklet_id=masklet.pk)


@login_required
def review_history(request: HttpRequest, masklet_id: int) -> HttpResponse:
    """Revisions and verdicts of a masklet, for every member of its project."""
    user = page_user(request)
    masklet = queue.access_masklet(user, masklet_id)
    payload = payloads.review_payload(masklet)
    return render(
        request,
        "review/history.html",
        {
            "masklet": masklet,
            "video": masklet.video,
            "revisions": payload["revisions"],
            "history": payload["reviews"],
            "can_review": queue.can_review(user, masklet.video.project),
        },
    )


@login_required
def fix_list(request: HttpRequest) -> HttpResponse:
    pending = list(leases.open_fix_assignments(page_user(request)))
    return render(request, "review/fixes.html", {"fixes": pending})


def _fix_context(assignment: Assignment, masklet: Masklet, **extra: Any) -> dict[str, Any]:
    source = fixes.fix_review(assignment)
    return {
        "assignment": assignment,
        "masklet": masklet,
        "video": masklet.video,
        "payload": payloads.review_payload(masklet),
        "history": payloads.review_history(masklet),
        "source_review": source,
        "flag_notes": {
            "flagged_frames": list(assignment.flagged_frames),
            "frame_notes": dict(source.frame_notes) if source else {},
        },
        "pending": assignment.state in (Assignment.State.OPEN, Assignment.State.LEASED),
        **extra,
    }


@login_required
def fix_masklet(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """Correct the flagged frames with a brush / eraser and resubmit (POST)."""
    user = page_user(request)
    assignment = fixes.access_fix_assignment(user, assignment_id)
    if assignment.masklet_id is None:
        raise NotFound("No such fix assignment")
    masklet = queue.access_masklet(user, assignment.masklet_id)
    if request.method != "POST":
        return render(request, "review/fix.html", _fix_context(assignment, masklet))
    try:
        form = validated(FixResubmitSerializer, _form_data(request))
        fixes.do_resubmit_fix(
            assignment,
            user,
            form["frames"],
            base_revision_id=form["base_revision"],
            note=form["note"],
        )
    except EngineError as exc:
        context = _fix_context(assignment, masklet, error=str(exc))
        return render(request, "review/fix.html", context, status=status_for(exc))
    messages.success(request, f"Masklet {masklet.pk} resubmitted for review.")
    return redirect("fix-list")


@login_required
def review_stats(request: HttpRequest, project_id: int) -> HttpResponse:
    """Review throughput and rejection rates, for the project's managers."""
    project = access.access_project_as_manager(page_user(request), project_id)
    summary = stats.review_stats(project)
    return render(request, "review/stats.html", {"project": project, "stats": summary})
