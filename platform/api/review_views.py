"""REST endpoints for verification: the review queue, verdicts, fix assignments, review stats.

Thin views: a serializer of :mod:`api.review_serializers` parses the body, ``engine.review``
does the work, :mod:`api.review_payloads` shapes the answer. Domain errors propagate to
``api.errors.exception_handler``. ``review_urlpatterns`` is included from ``api/urls.py``.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from api import review_payloads as payloads
from api.review_serializers import (
    FixResubmitSerializer,
    ProjectChoiceSerializer,
    SubmitSerializer,
    VerdictSerializer,
    validated,
)
from api.views import request_user
from engine.accounts import access
from engine.errors import NotFound
from engine.models import MaskletRevision, Project
from engine.review import fixes, leases, queue, stats, submission, verdicts


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def review_queue(request: Request) -> Response:
    """Submitted masklets the caller may review (``?project=<id>`` narrows to one project)."""
    user = request_user(request)
    project: Project | None = None
    if "project" in request.query_params:
        project_id = validated(ProjectChoiceSerializer, request.query_params)["project"]
        project = access.access_project(user, project_id)
    masklets = queue.review_queue(user, project)[:200]
    return Response({"results": [payloads.masklet_summary(m) for m in masklets]})


@extend_schema(request=ProjectChoiceSerializer, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
def take_next_review(request: Request) -> Response:
    """Lease the next masklet of ``{"project": id}`` to the caller; 204 when the queue is empty."""
    user = request_user(request)
    project = access.access_project(
        user, validated(ProjectChoiceSerializer, request.data)["project"]
    )
    masklet = queue.do_take_next_review(user, project)
    if masklet is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(payloads.masklet_summary(masklet))


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def masklet_review_data(request: Request, masklet_id: int) -> Response:
    """The masklet's frames (COCO RLE), per-frame edits with authors, revisions and verdicts."""
    masklet = queue.access_masklet(request_user(request), masklet_id)
    return Response(payloads.review_payload(masklet))


@extend_schema(request=SubmitSerializer, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
def submit_masklet(request: Request, masklet_id: int) -> Response:
    """Send a draft masklet to review; ``{"base_revision": id}`` guards against stale data."""
    user = request_user(request)
    masklet = queue.access_masklet(user, masklet_id)
    body = validated(SubmitSerializer, request.data)
    masklet = submission.do_submit_masklet(masklet, user, base_revision_id=body["base_revision"])
    return Response(payloads.masklet_summary(masklet))


@extend_schema(request=VerdictSerializer, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
def post_verdict(request: Request, masklet_id: int) -> Response:
    """Give a verdict on the masklet's current revision.

    Body: ``{"revision": id, "verdict": "satisfactory" | "unsatisfactory" | "reject",
    "flagged_frames": [int], "frame_notes": {"<frame>": str}, "comment": str,
    "fix_assignee": user id of an annotator or manager of the project (optional)}``.
    """
    user = request_user(request)
    masklet = queue.access_masklet(user, masklet_id)
    body = validated(VerdictSerializer, request.data)
    revision = MaskletRevision.objects.filter(pk=body["revision"], masklet=masklet).first()
    if revision is None:
        raise NotFound(f"masklet {masklet.pk} has no revision {body['revision']}")
    assignee = None
    if body["fix_assignee"] is not None:
        assignee = fixes.access_fixer(masklet.video.project, body["fix_assignee"])
    outcome = verdicts.do_review(
        revision,
        user,
        body["verdict"],
        body["flagged_frames"],
        body["frame_notes"],
        body["comment"],
        fix_assignee=assignee,
    )
    return Response(
        {
            "review": payloads.review_json(outcome.review),
            "masklet": payloads.masklet_summary(outcome.masklet),
            "fix_assignment": outcome.fix_assignment.pk if outcome.fix_assignment else None,
        },
        status=status.HTTP_201_CREATED,
    )


@extend_schema(operation_id="fixes_list", responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def fix_list(request: Request) -> Response:
    """The caller's pending fix assignments (and unassigned ones of their projects)."""
    pending = leases.open_fix_assignments(request_user(request))[:200]
    return Response({"results": [payloads.fix_json(a) for a in pending]})


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def fix_detail(request: Request, assignment_id: int) -> Response:
    """One fix assignment with the masklet's review data (frames, edits, verdicts)."""
    assignment = fixes.access_fix_assignment(request_user(request), assignment_id)
    return Response(payloads.fix_json(assignment, with_payload=True))


@extend_schema(request=FixResubmitSerializer, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
def fix_resubmit(request: Request, assignment_id: int) -> Response:
    """Save corrected frames and resubmit: ``{"base_revision": id, "frames": {"<frame>": RLE},
    "note": str}``. RLE is COCO compressed or uncompressed (column-major run lengths)."""
    user = request_user(request)
    assignment = fixes.access_fix_assignment(user, assignment_id)
    body = validated(FixResubmitSerializer, request.data)
    revision = fixes.do_resubmit_fix(
        assignment,
        user,
        body["frames"],
        base_revision_id=body["base_revision"],
        note=body["note"],
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
def project_review_stats(request: Request, project_id: int) -> Response:
    """Review throughput and rejection rates of a project (its managers only)."""
    project = access.access_project_as_manager(request_user(request), project_id)
    return Response(stats.review_stats(project).to_json())


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
