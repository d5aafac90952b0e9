"""Pages: a video's small frame thumbnails, attaching a file to a video imported without
frames, removing a failed upload."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from engine.accounts import access
from engine.errors import Conflict, InvalidInput
from engine.videos import attach, removal, thumbnails
from webapp.users import page_user


@login_required
def frame_thumbnail(request: HttpRequest, video_id: int, index: int) -> FileResponse:
    """A frame scaled to at most 160x120, made on first request and kept (members only)."""
    video = access.access_video(page_user(request), video_id)
    key = thumbnails.frame_thumbnail(video, index)
    response = FileResponse(default_storage.open(key, "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_POST
def video_attach(request: HttpRequest, video_id: int) -> HttpResponse:
    """Managers: upload the video file of a video imported without frames."""
    user = page_user(request)
    video = access.access_video(user, video_id)
    access.access_project_as_manager(user, video.project_id)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise InvalidInput("Choose the video file to attach")
        attach.do_attach_video_file(video, user, upload.name or "", upload, upload.size or 0)
    except (InvalidInput, Conflict) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "File attached; decoding its frames.")
    return redirect("video-detail", video_id=video.pk)


@login_required
@require_POST
def video_remove(request: HttpRequest, video_id: int) -> HttpResponse:
    """Managers: remove a video whose upload or decoding failed."""
    user = page_user(request)
    video = access.access_video(user, video_id)
    project = access.access_project_as_manager(user, video.project_id)
    removal.do_remove_failed_video(video)
    messages.success(request, f"Removed {video.name}.")
    return redirect("project-manage", project_id=project.pk)
