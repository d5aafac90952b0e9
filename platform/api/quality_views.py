"""REST endpoints of the learned quality checks (engine.quality).

- ``GET /api/masklets/<id>/quality/``: the current revision's jitter, frames to check
  (``marks``), per-frame suspicion and failure probability; ``?draft=1`` measures the
  editable draft instead (the workspace's timeline).
- ``GET /api/projects/<id>/quality/``: the estimator and auto-accept state;
  ``PATCH`` (managers): switch auto-accept, set its threshold;
  ``POST /api/projects/<id>/quality/train/`` (managers): retrain now.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from api.quality_serializers import (
    AutoAcceptSerializer,
    MaskletQualitySerializer,
    ProjectQualitySerializer,
)
from api.review_serializers import validated
from api.views import request_user
from engine.accounts import access
from engine.quality import auto_accept, reports, training
from engine.review import queue


def _masklet_json(quality: reports.MaskletQuality) -> dict[str, object]:
    return {
        "masklet": quality.masklet_id,
        "measured": quality.source,
        "revision": quality.revision_id,
        "jitter": quality.jitter,
        "marks": quality.marks,
        "frame_suspicion": quality.frame_suspicion,
        "features": quality.features,
        "failure_probability": quality.failure_probability,
        "acceptance_probability": quality.acceptance_probability,
        "estimator": quality.quality_model_id,
        "auto_accepted": quality.auto_accepted,
        "auto_accepted_at": quality.auto_accepted_at,
        "auto_accept_threshold": quality.auto_accept_threshold,
    }


@extend_schema(
    parameters=[OpenApiParameter("draft", bool, description="measure the editable draft")],
    responses=MaskletQualitySerializer,
)
@api_view(["GET"])
def masklet_quality(request: Request, masklet_id: int) -> Response:
    """Jitter, frames to check and the estimate of a masklet the caller may see."""
    masklet = queue.access_masklet(request_user(request), masklet_id)
    draft = request.query_params.get("draft", "") in ("1", "true")
    data = _masklet_json(reports.masklet_quality(masklet, draft=draft))
    return Response(MaskletQualitySerializer(data).data)


def _project_json(project_id: int, request: Request) -> Response:
    project = access.access_project(request_user(request), project_id)
    data = reports.project_quality(project).as_json()
    return Response(ProjectQualitySerializer(data).data)


@extend_schema(methods=["GET"], responses=ProjectQualitySerializer)
@extend_schema(methods=["PATCH"], request=AutoAcceptSerializer, responses=ProjectQualitySerializer)
@api_view(["GET", "PATCH"])
def project_quality(request: Request, project_id: int) -> Response:
    """The project's quality estimator and auto-accept; managers switch auto-accept (PATCH)."""
    if request.method == "PATCH":
        user = request_user(request)
        project = access.access_project(user, project_id)
        if not auto_accept.may_manage_quality(user, project):
            raise access.AccessDenied("Only the project's managers may change auto-accept")
        body = validated(AutoAcceptSerializer, request.data)
        auto_accept.do_set_auto_accept(
            user,
            project,
            enabled=body["auto_accept"],
            threshold=body.get("auto_accept_threshold"),
        )
    return _project_json(project_id, request)


@extend_schema(request=None, responses=ProjectQualitySerializer)
@api_view(["POST"])
def train_project_quality(request: Request, project_id: int) -> Response:
    """Retrain the project's estimator now on all its verdicts (managers); still needs the
    minimum number of verdicts of each class (QUALITY_MIN_VERDICTS_PER_CLASS)."""
    user = request_user(request)
    project = access.access_project(user, project_id)
    if not auto_accept.may_manage_quality(user, project):
        raise access.AccessDenied("Only the project's managers may retrain the estimator")
    policy = training.QualityPolicy(
        min_per_class=settings.QUALITY_MIN_VERDICTS_PER_CLASS,
        retrain_after=settings.QUALITY_RETRAIN_AFTER_VERDICTS,
    )
    training.do_train_quality_model(project, policy, force=True)
    return _project_json(project_id, request)


#: Included from ``api/urls.py`` (``include("api.quality_views")``).
urlpatterns = [
    path("masklets/<int:masklet_id>/quality/", masklet_quality, name="api-masklet-quality"),
    path("projects/<int:project_id>/quality/", project_quality, name="api-project-quality"),
    path(
        "projects/<int:project_id>/quality/train/",
        train_project_quality,
        name="api-project-quality-train",
    ),
]
