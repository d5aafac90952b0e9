"""REST endpoints of model serving: a click or box answered with its mask (saved in the draft),
propagation as a job, and which model serves.

Thin views: serializers check shapes, :mod:`engine.annotation.serving` and
:mod:`engine.annotation.propagation` do the rest; engine errors become 4xx/503 in ``api.errors``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from api import serving_serializers as s
from api.annotation_views import ERRORS, _access_masklet
from api.serializers import JobSerializer
from api.views import request_user
from engine.annotation import propagation, serving

SERVING_ERRORS = {
    **ERRORS,
    503: OpenApiResponse(
        description="No model configured (the message says how to get one), or no worker answered"
    ),
}


@extend_schema(
    request=s.PromptRequestSerializer,
    responses={200: s.PromptResponseSerializer, **SERVING_ERRORS},
)
@api_view(["POST"])
def prompt(request: Request, masklet_id: int) -> Response:
    """Run SAM (image tools, phases 1-2) or SAM 2 (video tools, phase 3) on the frame with the
    object's full click list and box; the mask is saved as a draft edit with its prompt (undo,
    redo and replay see it) and returned as COCO RLE."""
    user = request_user(request)
    masklet = _access_masklet(user, masklet_id)
    body = s.PromptRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return Response(serving.do_prompt(user, masklet, body.to_request(masklet.pk)))


@extend_schema(
    request=s.PropagateRequestSerializer,
    responses={202: s.PropagateResponseSerializer, **SERVING_ERRORS},
)
@api_view(["POST"])
def propagate(request: Request, masklet_id: int) -> Response:
    """Queue a propagation of the object from ``start_frame`` (phases 2 and 3). Its frames are
    saved in the draft as they come (poll ``GET /api/masklets/<id>/draft/?since=<version>``);
    progress and cancel through ``/api/jobs/<id>/``."""
    user = request_user(request)
    masklet = _access_masklet(user, masklet_id)
    body = s.PropagateRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    job = propagation.do_start_propagation(
        user, masklet, data["base_version"], data["start_frame"], data["direction"]
    )
    return Response({"job": JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses={200: s.ModelStatusSerializer})
@api_view(["GET"])
def model_status(request: Request) -> Response:
    """Which model serves the workspace; with none configured, how to get one."""
    request_user(request)
    return Response(serving.model_status())
