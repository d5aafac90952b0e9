"""REST endpoints: a project's jobs, the queues overview, retrying a failed job.

    GET  /api/projects/<id>/jobs/   the project's latest 50 jobs (members), newest first
    GET  /api/jobs/overview/        jobs per queue, workers seen, leases held (managers, admins)
    POST /api/jobs/<id>/retry/      send a failed or cancelled job again (the project's managers)

Cancel stays at ``POST /api/jobs/<id>/cancel/``.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.serializers import JobSerializer
from api.views import request_user
from engine.accounts import access
from engine.jobs import overview
from engine.models import Assignment, Job

PROJECT_JOBS_LIMIT = 50


class ProjectJobsView(APIView):
    @extend_schema(responses=JobSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = access.access_project(request_user(request), project_id)
        jobs = Job.objects.filter(project=project).order_by("-created_at", "-id")
        return Response(JobSerializer(jobs[:PROJECT_JOBS_LIMIT], many=True).data)


def _lease(lease: Assignment) -> dict[str, Any]:
    return {
        "id": lease.pk,
        "kind": lease.kind,
        "user": lease.user.username if lease.user else None,
        "project": lease.video.project_id,
        "video": lease.video_id,
        "masklet": lease.masklet_id,
        "expires_at": lease.lease_expires_at,
    }


class OverviewView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        user = request_user(request)
        return Response(
            {
                "queues": [
                    {
                        "name": q.name,
                        "waiting": JobSerializer(q.waiting, many=True).data,
                        "running": JobSerializer(q.running, many=True).data,
                        "failed": JobSerializer(q.failed, many=True).data,
                    }
                    for q in overview.queues(user)
                ],
                "workers": [
                    {
                        "name": w.name,
                        "last_seen": w.last_seen,
                        "alive": w.alive,
                        "running": w.running,
                        "sessions": w.sessions,
                    }
                    for w in overview.workers_seen(user)
                ],
                "leases": [_lease(lease) for lease in overview.leases_held(user)],
            }
        )


class RetryView(APIView):
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request: Request, job_id: int) -> Response:
        job = overview.do_retry_job(request_user(request), job_id)
        return Response(JobSerializer(job).data)


urlpatterns = [
    path("projects/<int:project_id>/jobs/", ProjectJobsView.as_view(), name="project-jobs"),
    path("jobs/overview/", OverviewView.as_view(), name="jobs-overview"),
    path("jobs/<int:job_id>/retry/", RetryView.as_view(), name="job-retry"),
]
