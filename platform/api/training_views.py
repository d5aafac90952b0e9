"""REST endpoints of model versions and retraining rounds (routes in ``api/training_urls.py``)::

    GET  /api/models/                          versions, which serves, the rollback target
    POST /api/models/                          register a candidate (multipart file or storage_key)
    GET  /api/models/<id>/                     one version with its lineage
    POST /api/models/<id>/promote/             promote (managers)
    POST /api/models/rollback/                 re-promote the previous version (managers)
    GET  /api/projects/<id>/rounds/            rounds, the running one (progress, loss curve), plots
    POST /api/projects/<id>/rounds/            start a round (managers; 409 while one runs)
    POST /api/projects/<id>/rounds/cancel/     cancel the running round (managers)
    GET|PATCH /api/projects/<id>/round-settings/   triggers (PATCH: managers)
    GET  /api/rounds/<id>/                     one round's summary

Engine errors become 4xx in ``api.errors``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import training_serializers as s
from api.parsers import DepthLimitedJSONParser, StrictMultiPartParser
from api.serializers import JobSerializer
from api.views import request_user
from engine.accounts import access
from engine.errors import Conflict, NotFound
from engine.models import Round
from engine.training import overview, rounds, triggers, versions

ERRORS = {
    400: OpenApiResponse(description="Bad input (e.g. not a checkpoint of the config)"),
    403: OpenApiResponse(description="Not allowed (managers only)"),
    404: OpenApiResponse(description="Unknown or invisible object"),
    409: OpenApiResponse(description="Conflict (name taken, round running, nothing to roll back)"),
}


class ModelListView(APIView):
    parser_classes = [StrictMultiPartParser, FormParser, DepthLimitedJSONParser]

    @extend_schema(operation_id="models_list", responses={200: s.ModelListSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        return Response(overview.models_overview(request_user(request)))

    @extend_schema(
        request=s.RegisterUploadSerializer, responses={201: s.ModelVersionSerializer, **ERRORS}
    )
    def post(self, request: Request) -> Response:
        """Register a checkpoint as a candidate: validated (strict keys and shapes of the
        config), its sha256 computed, stored under a key derived from the sha256."""
        user = request_user(request)
        versions.check_may_manage_models(user)
        body = s.RegisterUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        parent = versions.access_version(user, data["parent"]) if data.get("parent") else None
        if "file" in data:
            version = versions.do_register_upload(
                user, data["file"], name=data["name"], config=data["config"], parent=parent
            )
        else:
            version = versions.do_register_stored(
                user, data["storage_key"], name=data["name"], config=data["config"], parent=parent
            )
        return Response(versions.version_summary(version), status=status.HTTP_201_CREATED)


class ModelDetailView(APIView):
    @extend_schema(responses={200: s.ModelVersionSerializer, **ERRORS})
    def get(self, request: Request, version_id: int) -> Response:
        version = versions.access_version(request_user(request), version_id)
        return Response(versions.version_summary(version))


class PromoteView(APIView):
    parser_classes = [DepthLimitedJSONParser, FormParser]

    @extend_schema(request=s.ActionSerializer, responses={200: s.ModelVersionSerializer, **ERRORS})
    def post(self, request: Request, version_id: int) -> Response:
        """Promote the version (its stored checkpoint must still match its sha256); the one
        promoted before retires. New annotation sessions use it at once."""
        user = request_user(request)
        version = versions.access_version(user, version_id)
        body = s.ActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        promoted = versions.do_promote(user, version, reason=body.validated_data.get("reason", ""))
        return Response(versions.version_summary(promoted))


class RollbackView(APIView):
    parser_classes = [DepthLimitedJSONParser, FormParser]

    @extend_schema(request=s.ActionSerializer, responses={200: s.ModelVersionSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        """Re-promote the version that served before the current one (it retires)."""
        user = request_user(request)
        versions.check_may_view_models(user)
        body = s.ActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        promoted = versions.do_rollback(user, reason=body.validated_data.get("reason", ""))
        return Response(versions.version_summary(promoted))


class ProjectRoundsView(APIView):
    parser_classes = [DepthLimitedJSONParser, FormParser]

    @extend_schema(responses={200: s.RoundListSerializer, **ERRORS})
    def get(self, request: Request, project_id: int) -> Response:
        project = access.access_project(request_user(request), project_id)
        return Response(overview.rounds_overview(project))

    @extend_schema(request=s.StartRoundSerializer, responses={202: JobSerializer, **ERRORS})
    def post(self, request: Request, project_id: int) -> Response:
        """Start a round now (managers); follow it here or at ``/api/jobs/<id>/``."""
        user = request_user(request)
        project = access.access_project_as_manager(user, project_id)
        body = s.StartRoundSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = rounds.do_start_round(user, project, steps=body.validated_data.get("steps"))
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class CancelRoundView(APIView):
    @extend_schema(request=None, responses={202: JobSerializer, **ERRORS})
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = access.access_project_as_manager(user, project_id)
        job = rounds.active_round_job(project)
        if job is None:
            raise Conflict("no round of this project is queued or running")
        rounds.do_cancel_round(user, job)
        job.refresh_from_db()
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class RoundSettingsView(APIView):
    parser_classes = [DepthLimitedJSONParser, FormParser]

    @extend_schema(responses={200: s.RoundSettingsSerializer, **ERRORS})
    def get(self, request: Request, project_id: int) -> Response:
        project = access.access_project(request_user(request), project_id)
        return Response(overview.round_settings_json(project))

    @extend_schema(
        request=s.RoundSettingsSerializer, responses={200: s.RoundSettingsSerializer, **ERRORS}
    )
    def patch(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = access.access_project_as_manager(user, project_id)
        body = s.RoundSettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        triggers.do_update_round_settings(user, project, **body.validated_data)
        return Response(overview.round_settings_json(project))


class RoundDetailView(APIView):
    @extend_schema(responses={200: s.RoundSerializer, **ERRORS})
    def get(self, request: Request, round_id: int) -> Response:
        user = request_user(request)
        round_ = Round.objects.filter(pk=round_id).select_related("job").first()
        if round_ is None:
            raise NotFound("No such round")
        access.access_project(user, round_.project_id)
        return Response(rounds.round_summary(round_))
