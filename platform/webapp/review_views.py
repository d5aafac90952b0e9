"""Pages for verification: review queue, review player, verdict history, fixes, review stats.

Views parse the form, call :mod:`engine.review.verdicts` and render; engine errors become a page
with the message and a 400 / 403 / 409 status.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from engine.accounts import access
from engine.masklets.revisions import InvalidMask, StaleRevision
from engine.models import Masklet, MaskletRevision, Project, Review, Role, User
from engine.review import leases
from engine.review import verdicts as review

FRAME_URL_PREFIX = "/media/videos/{video_id}/frames/"


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _payload(masklet: Masklet) -> dict[str, Any]:
    return review.review_payload(masklet, FRAME_URL_PREFIX.format(video_id=masklet.video_id))


def _json_field(request: HttpRequest, name: str, default: Any) -> Any:
    raw = request.POST.get(name, "")
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise review.InvalidReview(f"{name} is not valid JSON") from None


def _error_status(exc: Exception) -> int:
    if isinstance(exc, access.AccessDenied):
        return 403
    if isinstance(exc, StaleRevision | review.NotReviewable):
        return 409
    return 400


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    """The reviewer's start page: per project, how many masklets wait, and a Take-next button."""
    user = _user(request)
    rows = []
    for project in access.projects_for_user(user):
        role = access.project_role(user, project)
        if role not in review.REVIEW_ROLES:
            continue
        queue = review.review_queue(user, project)
        rows.append(
            {
                "project": project,
                "count": queue.count(),
                "masklets": list(queue[:20]),
                "is_manager": role == Role.MANAGER,
            }
        )
    return render(request, "review/queue.html", {"rows": rows})


@login_required
@require_POST
def take_next(request: HttpRequest, project_id: int) -> HttpResponse:
    user = _user(request)
    project = access.access_project(user, project_id)
    try:
        masklet = review.do_take_next_review(user, project)
    except access.AccessDenied as exc:
        raise PermissionDenied(str(exc)) from None
    if masklet is None:
        messages.info(request, f"Nothing to review in {project.name} right now.")
        return redirect("review-queue")
    return redirect("review-masklet", masklet_id=masklet.pk)


def _review_context(masklet: Masklet, **extra: Any) -> dict[str, Any]:
    return {
        "masklet": masklet,
        "video": masklet.video,
        "payload": _payload(masklet),
        "history": review.review_history(masklet),
        "verdicts": Review.Verdict.choices,
        **extra,
    }


@login_required
def review_masklet(request: HttpRequest, masklet_id: int) -> HttpResponse:
    """Play the masklet over its frames; flag frames; give a verdict (POST)."""
    user = _user(request)
    masklet = review.access_masklet(user, masklet_id)
    project: Project = masklet.video.project
    if not review.can_review(user, project):
        raise PermissionDenied("Only the project's reviewers and managers review masklets")
    revision = masklet.current_revision
    if revision is not None and review.authored_upto(user, revision):
        raise PermissionDenied("You cannot review a masklet you worked on")
    if request.method == "POST":
        return _post_verdict(request, user, masklet)
    held = review.do_open_review(user, masklet)
    return render(request, "review/masklet.html", _review_context(masklet, held=held))


def _post_verdict(request: HttpRequest, user: User, masklet: Masklet) -> HttpResponse:
    try:
        revision_id = int(request.POST.get("revision", ""))
        revision = MaskletRevision.objects.filter(pk=revision_id, masklet=masklet).first()
        if revision is None:
            raise review.InvalidReview(f"masklet {masklet.pk} has no revision {revision_id}")
        review.do_review(
            revision,
            user,
            request.POST.get("verdict", ""),
            _json_field(request, "flagged_frames", []),
            _json_field(request, "frame_notes", {}),
            request.POST.get("comment", ""),
        )
    except ValueError as exc:  # InvalidReview is a ValueError; so is a non-numeric revision
        return _render_error(request, masklet, exc)
    except (access.AccessDenied, StaleRevision, review.NotReviewable) as exc:
        return _render_error(request, masklet, exc)
    masklet.refresh_from_db()
    messages.success(request, f"Verdict saved: masklet {masklet.pk} is now {masklet.status}.")
    return redirect("review-history", masklet_id=masklet.pk)


def _render_error(request: HttpRequest, masklet: Masklet, exc: Exception) -> HttpResponse:
    masklet.refresh_from_db()
    return render(
        request,
        "review/masklet.html",
        _review_context(masklet, error=str(exc)),
        status=_error_status(exc),
    )


@login_required
def review_history(request: HttpRequest, masklet_id: int) -> HttpResponse:
    """Revisions and verdicts of a masklet, for every member of its project."""
    user = _user(request)
    masklet = review.access_masklet(user, masklet_id)
    payload = _payload(masklet)
    return render(
        request,
        "review/history.html",
        {
            "masklet": masklet,
            "video": masklet.video,
            "revisions": payload["revisions"],
            "history": payload["reviews"],
            "can_review": review.can_review(user, masklet.video.project),
        },
    )


@login_required
def fix_list(request: HttpRequest) -> HttpResponse:
    fixes = list(leases.open_fix_assignments(_user(request)))
    return render(request, "review/fixes.html", {"fixes": fixes})


@login_required
def fix_masklet(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """Correct the flagged frames with a brush / eraser and resubmit (POST)."""
    user = _user(request)
    assignment = review.access_fix_assignment(user, assignment_id)
    assert assignment.masklet is not None
    masklet = review.access_masklet(user, assignment.masklet.pk)
    source = review.fix_review(assignment)
    context = {
        "assignment": assignment,
        "masklet": masklet,
        "video": masklet.video,
        "payload": _payload(masklet),
        "history": review.review_history(masklet),
        "source_review": source,
        "flag_notes": {
            "flagged_frames": list(assignment.flagged_frames),
            "frame_notes": dict(source.frame_notes) if source else {},
        },
        "pending": assignment.state in ("open", "leased"),
    }
    if request.method != "POST":
        return render(request, "review/fix.html", context)
    try:
        frames = review.client_frames(masklet.video, _json_field(request, "frames", {}))
        review.do_resubmit_fix(
            assignment,
            user,
            frames,
            base_revision_id=int(request.POST.get("base_revision", "")),
            note=request.POST.get("note", "")[:2000],
        )
    except (
        ValueError,
        InvalidMask,
        access.AccessDenied,
        StaleRevision,
        review.NotReviewable,
    ) as exc:
        context["error"] = str(exc)
        return render(request, "review/fix.html", context, status=_error_status(exc))
    messages.success(request, f"Masklet {masklet.pk} resubmitted for review.")
    return redirect("fix-list")


@login_required
def review_stats(request: HttpRequest, project_id: int) -> HttpResponse:
    """Review throughput and rejection rates, for the project's managers."""
    try:
        project = access.access_project_as_manager(_user(request), project_id)
    except access.AccessDenied as exc:
        raise PermissionDenied(str(exc)) from None
    stats = review.review_stats(project)
    return render(request, "review/stats.html", {"project": project, "stats": stats})
