"""Pages. Views parse the request, call ``engine`` and render; they hold no domain logic."""

from __future__ import annotations

import mimetypes
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from engine import errors
from engine.accounts import access, projects, users
from engine.models import Project, Role, Video
from engine.videos.frameless import held_masklet_count, is_frameless
from webapp import console_data
from webapp.forms import ProjectForm
from webapp.users import page_user

_MEDIA_KEY = re.compile(r"^videos/(\d+)/[\w./-]+$")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    projects_seen = access.projects_for_user(user)
    return render(
        request,
        "home.html",
        {
            "projects": projects_seen,
            "can_create": user.is_manager,
            # Whom a person in no project asks to be added.
            "site_admins": [] if projects_seen.exists() else users.site_admin_accounts(),
        },
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
    """The manager's page: data in and out (upload, import, automatic masklets, export) as
    jobs with live progress, and the videos' ingest progress."""
    user = page_user(request)
    project = access.access_project_as_manager(user, project_id)
    return render(request, "project_manage.html", console_data.manage_context(project))


@login_required
@require_POST
def project_phase(request: HttpRequest, project_id: int) -> HttpResponse:
    """Move the project to another phase protocol (the manage page's form); back to that page
    with a message, or with the engine's refusal of an unknown phase."""
    user = page_user(request)
    project = access.access_project_as_manager(user, project_id)
    try:
        phase = int(request.POST.get("phase", ""))
        projects.do_set_phase(user, project, phase)
    except (ValueError, errors.InvalidInput):
        messages.error(request, "Choose one of the phases listed.")
    else:
        label = Project.Phase(phase).label
        messages.success(request, f"{project.name} is now annotated in {label}.")
    return redirect("project-manage", project_id=project.pk)


@login_required
def video_detail(request: HttpRequest, video_id: int) -> HttpResponse:
    user = page_user(request)
    video = access.access_video(user, video_id)
    frameless = is_frameless(video) and video.status != Video.Status.READY
    return render(
        request,
        "video_detail.html",
        {
            "video": video,
            "frames": [] if frameless else range(min(video.frame_count, 500)),
            "frameless": frameless,
            "held_masklets": held_masklet_count(video),
            "is_manager": access.project_role(user, video.project) == Role.MANAGER,
        },
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
