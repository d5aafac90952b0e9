"""Dataset endpoints: start and download an export (managers), import files (managers).

Poll either job at ``/api/jobs/<id>/``. Included from ``api/urls.py``::

    POST /api/projects/<id>/exports/   {"format": "sav", "videos": [ids], "kinds": ["manual"]}
    GET  /api/exports/<job id>/download/
    POST /api/projects/<id>/imports/   multipart: file (.json or .zip), format?, video?, status?
                                       (status default: submitted, queued for review)
    POST /api/videos/<id>/attach/      multipart: file; a video imported without frames gets them
    POST /api/videos/<id>/remove/      a failed upload goes away
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.parsers import DepthLimitedJSONParser, StrictMultiPartParser
from api.serializers import JobSerializer
from api.views import request_user
from engine.accounts import access
from engine.datasets.export import EXPORT_FORMATS, do_start_export
from engine.datasets.import_readers import IMPORT_FORMATS
from engine.datasets.importing import do_start_import
from engine.models import Job, Masklet
from engine.videos import attach, removal


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=EXPORT_FORMATS)
    videos = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=Masklet.Kind.values), required=False
    )


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=IMPORT_FORMATS, required=False)
    video = serializers.CharField(required=False, max_length=255)
    status = serializers.ChoiceField(
        choices=Masklet.Status.values,
        required=False,
        help_text="Status of the imported masklets; default submitted (queued for review). "
        "'verified' imports ground truth.",
    )


class ExportView(APIView):
    parser_classes = [DepthLimitedJSONParser]

    @extend_schema(request=ExportRequestSerializer, responses={202: JobSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = access.access_project_as_manager(request_user(request), project_id)
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = do_start_export(
            project,
            user=request_user(request),
            fmt=data["format"],
            video_ids=data.get("videos"),
            kinds=data.get("kinds"),
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDownloadView(APIView):
    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, job_id: int) -> Response | FileResponse:
        jobs = access.jobs_for_user(request_user(request))
        job = jobs.filter(pk=job_id, kind=Job.Kind.EXPORT).first()
        if job is None or job.project_id is None:
            return Response({"detail": "No such export"}, status=status.HTTP_404_NOT_FOUND)
        # the zip holds the project's whole verified dataset: those who may export it, only
        access.access_project_as_manager(request_user(request), job.project_id)
        if job.status != Job.Status.SUCCEEDED:
            return Response(
                {
                    "detail": f"The export is {job.status}, not ready to download",
                    "job": JobSerializer(job).data,
                },
                status=status.HTTP_409_CONFLICT,
            )
        key = job.result.get("key", "")
        if not key or not default_storage.exists(key):
            return Response(
                {"detail": "The export file is gone; start a new export"},
                status=status.HTTP_410_GONE,
            )
        return FileResponse(
            default_storage.open(key, "rb"),
            as_attachment=True,
            filename=job.result.get("filename") or "export.zip",
            content_type="application/zip",
        )


class ImportView(APIView):
    parser_classes = [StrictMultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer}, responses={202: JobSerializer}
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = access.access_project_as_manager(request_user(request), project_id)
        serializer = ImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        job = do_start_import(
            project,
            user=request_user(request),
            fileobj=upload,
            filename=upload.name or "upload",
            fmt=data.get("format"),
            video_name=data.get("video"),
            status=data.get("status") or Masklet.Status.SUBMITTED,
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class AttachFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The video file the imported masks were made on")


class AttachView(APIView):
    """A video imported without frames (status ``no_frames``): attach its video file."""

    parser_classes = [StrictMultiPartParser]

    @extend_schema(
        request={"multipart/form-data": AttachFileSerializer}, responses={202: JobSerializer}
    )
    def post(self, request: Request, video_id: int) -> Response:
        user = request_user(request)
        video = access.access_video(user, video_id)
        access.access_project_as_manager(user, video.project_id)
        body = AttachFileSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        job = attach.do_attach_video_file(video, user, upload.name or "", upload, upload.size or 0)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class RemoveFailedVideoView(APIView):
    """Remove a video whose upload or decoding failed (409 for any other video)."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, video_id: int) -> Response:
        user = request_user(request)
        video = access.access_video(user, video_id)
        access.access_project_as_manager(user, video.project_id)
        removal.do_remove_failed_video(video)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("videos/<int:video_id>/attach/", AttachView.as_view(), name="video-attach-file"),
    path("videos/<int:video_id>/remove/", RemoveFailedVideoView.as_view(), name="video-remove-api"),
    path("projects/<int:project_id>/exports/", ExportView.as_view(), name="dataset-export"),
    path(
        "exports/<int:job_id>/download/",
        ExportDownloadView.as_view(),
        name="dataset-export-download",
    ),
    path("projects/<int:project_id>/imports/", ImportView.as_view(), name="dataset-import"),
]
