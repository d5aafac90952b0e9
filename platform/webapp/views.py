"""Pages. Views parse the request, call ``engine`` and render; they hold no domain logic."""

from __future__ import annotations

import mimetypes
import re

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from engine import errors
from engine.accounts import access, projects
from engine.models import Role
from webapp.forms import ProjectForm
from webapp.users import page_user

_MEDIA_KEY = re.compile(r"^videos/(\d+)/[\w./-]+$")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    return render(
        request,
        "home.html",
        {"projects": access.projects_for_user(user), "can_create": user.is_manager},
    )


@login_required
def project_new(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    if not user.is_manager:
        raise errors.PermissionDenied("Only managers may create projects")
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = projects.do_create_project(creator=user, **form.cleaned_data)
        return redirect("project-manage", project_id=project.pk)
    return render(request, "project_new.html", {"form": form})


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    user = page_user(request)
    project = access.access_project(user, project_id)
    role = access.project_role(user, project)
    return render(
        request,
        "project_detail.html",
        {
            "project": project,
            "videos": project.videos.all(),
            "role": role,
            "is_manager": role == Role.MANAGER,
        },
    )


@login_required
def project_manage(request: HttpRequest, project_id: int) -> HttpResponse:
    """The manager's page: upload videos and watch their ingest progress."""
    user = page_user(request)
    project = access.access_project_as_manager(user, project_id)
    return render(
        request, "project_manage.html", {"project": project, "videos": project.videos.all()}
    )


@login_required
def video_detail(request: HttpRequest, video_id: int) -> HttpResponse:
    video = access.access_video(page_user(request), video_id)
    return render(
        request, "video_detail.html", {"video": video, "frames": range(min(video.frame_count, 500))}
    )


@login_required
def media(request: HttpRequest, key: str) -> FileResponse:
    """Serve a stored object (frames, thumbnails) to members of the video's project only."""
    match = _MEDIA_KEY.match(key)
    if not match or ".." in key:
        raise Http404("No such file")
    access.access_video(page_user(request), int(match.group(1)))
    if not default_storage.exists(key):
        raise Http404("No such file")
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    response = FileResponse(default_storage.open(key, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response
