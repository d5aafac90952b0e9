"""REST endpoints: thin, scoped to the user, delegating changes to ``engine``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from api.parsers import DepthLimitedJSONParser, StrictMultiPartParser
from api.serializers import (
    JobSerializer,
    ProjectPhaseSerializer,
    ProjectSerializer,
    VideoSerializer,
    VideoUploadSerializer,
)
from engine.accounts import access, projects
from engine.jobs import lifecycle
from engine.models import Job, Project, User, Video
from engine.videos import ingest

#: Ids in URLs: ASCII digits that fit a 64-bit column. Anything else (``abc``, ``²``, ``--5``,
#: 20 digits) matches no route, a 404, instead of reaching ``int()`` or the database.
ID_PATTERN = "[0-9]{1,18}"


def request_user(request: Request) -> User:
    """The authenticated user (every endpoint requires authentication)."""
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user


def url_id(value: str | None) -> int:
    """An id captured from the URL (``ID_PATTERN`` already holds it to digits)."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 18:
        raise NotFound()
    return int(value)


#: One page of a project's videos (the ``videos`` action paginates like the list routes).
_VIDEO_PAGE = inline_serializer(
    "ProjectVideoPage",
    fields={
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": VideoSerializer(many=True),
    },
)


class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProjectSerializer
    parser_classes = [DepthLimitedJSONParser, StrictMultiPartParser]
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[Project]:
        return access.projects_for_user(request_user(self.request))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request_user(request).is_manager:
            raise PermissionDenied("Only managers may create projects")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = projects.do_create_project(
            creator=request_user(request),
            **serializer.validated_data,
        )
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProjectPhaseSerializer, responses={200: ProjectSerializer})
    @action(detail=True, methods=["post"], parser_classes=[DepthLimitedJSONParser])
    def phase(self, request: Request, pk: str | None = None) -> Response:
        """Managers: move the project to another phase protocol; new prompts are checked
        against it."""
        project = access.access_project_as_manager(request_user(request), url_id(pk))
        serializer = ProjectPhaseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = projects.do_set_phase(
            request_user(request), project, int(serializer.validated_data["phase"])
        )
        return Response(ProjectSerializer(project).data)

    @extend_schema(methods=["GET"], responses=_VIDEO_PAGE)
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": VideoUploadSerializer},
        responses={202: VideoSerializer},
    )
    @action(detail=True, methods=["get", "post"], parser_classes=[StrictMultiPartParser])
    def videos(self, request: Request, pk: str | None = None) -> Response:
        """GET: the project's videos with status and progress. POST (managers): upload a video."""
        if request.method == "GET":
            project = access.access_project(request_user(request), url_id(pk))
            page = self.paginate_queryset(project.videos.all())
            return self.get_paginated_response(VideoSerializer(page, many=True).data)
        project = access.access_project_as_manager(request_user(request), url_id(pk))
        upload = request.FILES.get("file")
        if upload is None:
            return Response(
                {"detail": "Send the video in a multipart field named 'file'"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        video = ingest.do_upload_video(
            project, request_user(request), upload.name or "", upload, upload.size or 0
        )
        data = VideoSerializer(video).data
        if video.status == Video.Status.FAILED:
            code = 413 if "upload limit" in video.error else status.HTTP_400_BAD_REQUEST
            return Response({"detail": video.error, "video": data}, status=code)
        return Response(data, status=status.HTTP_202_ACCEPTED)


class VideoViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = VideoSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[Video]:
        return access.videos_for_user(request_user(self.request))


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[Job]:
        return access.jobs_for_user(request_user(self.request))

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a job: its creator, the project's managers and site admins may."""
        job = self.get_object()
        lifecycle.do_request_cancel(request_user(request), job)
        job.refresh_from_db()
        return Response(JobSerializer(job).data)
