"""REST endpoints for verification: the review queue, verdicts, fix assignments, review stats.

Thin views: they parse, call :mod:`engine.review.verdicts` and map its errors onto 4xx responses.
``review_urlpatterns`` is included from ``api/urls.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from engine.accounts import access
from engine.masklets.revisions import InvalidMask, StaleRevision
from engine.models import Assignment, Masklet, MaskletRevision, Project, User
from engine.review import verdicts as review
from engine.review.leases import open_fix_assignments

FRAME_URL_PREFIX = "/media/videos/{video_id}/frames/"
ViewFunc = Callable[..., Response]


def _user(request: Request) -> User:
    assert isinstance(request.user, User)
    return request.user


def engine_errors(view: ViewFunc) -> ViewFunc:
    """Map engine errors to ``{"detail": ...}`` responses with the right 4xx status."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except (review.InvalidReview, InvalidMask) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except access.AccessDenied as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except (StaleRevision, review.NotReviewable) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)

    return wrapper


def _body(request: Request) -> Mapping[str, Any]:
    data = request.data
    if not isinstance(data, Mapping):
        raise review.InvalidReview("the request body must be a JSON object")
    return data


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise review.InvalidReview(f"{name} must be an integer id")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise review.InvalidReview(f"{name} must be an integer id, got {value!r}")


def _masklet_summary(masklet: Masklet) -> dict[str, Any]:
    revision = masklet.current_revision
    return {
        "id": masklet.pk,
        "video": masklet.video_id,
        "video_name": masklet.video.name,
        "project": masklet.video.project_id,
        "object_id": masklet.object_id,
        "kind": masklet.kind,
        "status": masklet.status,
        "revision": revision.pk if revision else None,
        "revision_number": revision.number if revision else None,
    }


def _payload(masklet: Masklet) -> dict[str, Any]:
    return review.review_payload(masklet, FRAME_URL_PREFIX.format(video_id=masklet.video_id))


def _fix_json(assignment: Assignment, *, with_payload: bool = False) -> dict[str, Any]:
    assert assignment.masklet is not None
    source = review.fix_review(assignment)
    data: dict[str, Any] = {
        "id": assignment.pk,
        "state": assignment.state,
        "user": assignment.user.username if assignment.user else None,
        "masklet": _masklet_summary(assignment.masklet),
        "flagged_frames": list(assignment.flagged_frames),
        "frame_notes": dict(source.frame_notes) if source else {},
        "reviewer": source.reviewer.username if source else None,
        "note": assignment.note,
        "created_at": assignment.created_at.isoformat(),
    }
    if with_payload:
        data["review_data"] = _payload(assignment.masklet)
    return data


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@engine_errors
def review_queue(request: Request) -> Response:
    """Submitted masklets the caller may review (``?project=<id>`` narrows to one project)."""
    user = _user(request)
    project: Project | None = None
    if "project" in request.query_params:
        project = access.access_project(user, _int(request.query_params["project"], "project"))
    masklets = review.review_queue(user, project)[:200]
    return Response({"results": [_masklet_summary(m) for m in masklets]})


@extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
@engine_errors
def take_next_review(request: Request) -> Response:
    """Lease the next masklet of ``{"project": id}`` to the caller; 204 when the queue is empty."""
    user = _user(request)
    project = access.access_project(user, _int(_body(request).get("project"), "project"))
    masklet = review.do_take_next_review(user, project)
    if masklet is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(_masklet_summary(masklet))


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@engine_errors
def masklet_review_data(request: Request, masklet_id: int) -> Response:
    """The masklet's frames (COCO RLE), per-frame edits with authors, revisions and verdicts."""
    return Response(_payload(review.access_masklet(_user(request), masklet_id)))


@extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
@engine_errors
def submit_masklet(request: Request, masklet_id: int) -> Response:
    """Send a draft masklet to review; ``{"base_revision": id}`` guards against stale data."""
    user = _user(request)
    masklet = review.access_masklet(user, masklet_id)
    base = _body(request).get("base_revision")
    masklet = review.do_submit_masklet(
        masklet, user, base_revision_id=None if base is None else _int(base, "base_revision")
    )
    return Response(_masklet_summary(masklet))


@extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
@engine_errors
def post_verdict(request: Request, masklet_id: int) -> Response:
    """Give a verdict on the masklet's current revision.

    Body: ``{"revision": id, "verdict": "satisfactory" | "unsatisfactory" | "reject",
    "flagged_frames": [int], "frame_notes": {"<frame>": str}, "comment": str,
    "fix_assignee": user id (optional)}``.
    """
    user = _user(request)
    masklet = review.access_masklet(user, masklet_id)
    data = _body(request)
    revision_id = _int(data.get("revision"), "revision")
    revision = MaskletRevision.objects.filter(pk=revision_id, masklet=masklet).first()
    if revision is None:
        raise Http404(f"masklet {masklet.pk} has no revision {revision_id}")
    assignee = None
    if data.get("fix_assignee") is not None:
        assignee = User.objects.filter(pk=_int(data["fix_assignee"], "fix_assignee")).first()
        if assignee is None:
            raise review.InvalidReview("unknown fix_assignee")
    outcome = review.do_review(
        revision,
        user,
        str(data.get("verdict", "")),
        data.get("flagged_frames", []),
        data.get("frame_notes") or {},
        data.get("comment", ""),
        fix_assignee=assignee,
    )
    return Response(
        {
            "review": review.review_history(outcome.masklet)[-1],
            "masklet": _masklet_summary(outcome.masklet),
            "fix_assignment": outcome.fix_assignment.pk if outcome.fix_assignment else None,
        },
        status=status.HTTP_201_CREATED,
    )


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@engine_errors
def fix_list(request: Request) -> Response:
    """The caller's pending fix assignments (and unassigned ones of their projects)."""
    fixes = open_fix_assignments(_user(request))[:200]
    return Response({"results": [_fix_json(a) for a in fixes]})


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@engine_errors
def fix_detail(request: Request, assignment_id: int) -> Response:
    """One fix assignment with the masklet's review data (frames, edits, verdicts)."""
    assignment = review.access_fix_assignment(_user(request), assignment_id)
    return Response(_fix_json(assignment, with_payload=True))


@extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
@engine_errors
def fix_resubmit(request: Request, assignment_id: int) -> Response:
    """Save corrected frames and resubmit: ``{"base_revision": id, "frames": {"<frame>": RLE},
    "note": str}``. RLE is COCO compressed or uncompressed (column-major run lengths)."""
    user = _user(request)
    assignment = review.access_fix_assignment(user, assignment_id)
    frames = review.client_frames(assignment.video, _body(request).get("frames", {}))
    revision = review.do_resubmit_fix(
        assignment,
        user,
        frames,
        base_revision_id=_int(_body(request).get("base_revision"), "base_revision"),
        note=str(_body(request).get("note", ""))[:2000],
    )
    return Response(
        {
            "revision": revision.pk,
            "number": revision.number,
            "edited_frames": revision.edited_frames,
        },
        status=status.HTTP_201_CREATED,
    )


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@engine_errors
def project_review_stats(request: Request, project_id: int) -> Response:
    """Review throughput and rejection rates of a project (its managers only)."""
    project = access.access_project_as_manager(_user(request), project_id)
    return Response(review.review_stats(project).to_json())


review_urlpatterns = [
    path("review/queue/", review_queue, name="api-review-queue"),
    path("review/queue/next/", take_next_review, name="api-review-next"),
    path("masklets/<int:masklet_id>/review/", masklet_review_data, name="api-masklet-review"),
    path("masklets/<int:masklet_id>/submit/", submit_masklet, name="api-masklet-submit"),
    path("masklets/<int:masklet_id>/reviews/", post_verdict, name="api-masklet-verdict"),
    path("fixes/", fix_list, name="api-fix-list"),
    path("fixes/<int:assignment_id>/", fix_detail, name="api-fix-detail"),
    path("fixes/<int:assignment_id>/resubmit/", fix_resubmit, name="api-fix-resubmit"),
    path("projects/<int:project_id>/review-stats/", project_review_stats, name="api-review-stats"),
]
