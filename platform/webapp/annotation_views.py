"""Pages of the annotator: the queue (take the next video, leases in force) and the workspace.

The workspace page only embeds what its script needs to start (the lease, the video, the
phase's tools, the objects); every later action goes through the annotation REST API
(``api.annotation_views``), so the page and scripts drive the same engine functions. Domain
errors propagate to ``webapp.errors.DomainErrorMiddleware``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_POST

from api.review_payloads import FRAME_URL_PREFIX
from engine.accounts import access
from engine.annotation import leases, phases, warmups
from engine.models import Assignment, Masklet, Project, Role, User
from webapp.users import page_user

#: Model-serving routes the workspace uses when the server has them (see ``_routes``).
_SERVING_ROUTES = {
    "prompt": "/api/masklets/0/prompt/",
    "propagate": "/api/masklets/0/propagate/",
    "model": "/api/annotation/model/",
}
#: The tools the page offers, and the phase tools each one sends as.
_PAGE_TOOLS = {
    "click": (phases.IMAGE_CLICK, phases.VIDEO_CLICK),
    "box": (phases.IMAGE_BOX, phases.VIDEO_BOX),
    "brush": (phases.BRUSH,),
    "eraser": (phases.ERASER,),
    "propagate": (phases.PROPAGATE,),
}


@login_required
def annotate_queue(request: HttpRequest) -> HttpResponse:
    """Per project the user annotates in: a Next-video button, their leases, and for managers
    who holds what (with a Release button)."""
    user = page_user(request)
    rows = []
    for project in access.projects_for_user(user).order_by("name"):
        role = access.project_role(user, project)
        if role not in leases.ANNOTATE_ROLES:
            continue
        is_manager = role == Role.MANAGER
        held = list(leases.annotation_leases_for_project(project))
        rows.append(
            {
                "project": project,
                "phase": Project.Phase(project.phase).label,
                "videos": leases.videos_to_annotate(user, project).count(),
                "fixes": leases.open_fixes_for(user, project).count(),
                "mine": [a for a in held if a.user_id == user.pk],
                "held": held if is_manager else [],
                "is_manager": is_manager,
            }
        )
    return render(request, "annotate/queue.html", {"rows": rows})


@login_required
@require_POST
def take_next(request: HttpRequest, project_id: int) -> HttpResponse:
    user = page_user(request)
    project = access.access_project(user, project_id)
    lease = leases.do_take_next_video(user, project)
    if lease is None:
        messages.info(request, f"No videos ready to annotate in {project.name} right now.")
        return redirect("annotate-queue")
    warmups.request_warm_session(user, lease.video)  # embed its first frames (best effort)
    return redirect("annotate-workspace", lease_id=lease.pk)


@login_required
@require_POST
def release(request: HttpRequest, lease_id: int) -> HttpResponse:
    """The holder gives the work back, or a manager releases someone's lease."""
    user = page_user(request)
    lease = leases.do_release_lease(user, leases.access_lease(user, lease_id))
    holder = lease.user.username if lease.user else "nobody"
    messages.success(request, f"Released {lease.video.name} (held by {holder}).")
    return redirect("annotate-queue")


def _routes() -> dict[str, bool]:
    """Which model-serving endpoints this server has: the page offers clicks, boxes and
    propagation only when they do, instead of failing on the first click."""
    found = {}
    for name, url in _SERVING_ROUTES.items():
        try:
            resolve(url)
            found[name] = True
        except Resolver404:
            found[name] = False
    return found


def page_tools(project: Project) -> dict[str, str]:
    """The page's tools the project's phase allows, each with the phase tool it sends as."""
    allowed = phases.allowed_tools(project)
    tools = {}
    for page_tool, candidates in _PAGE_TOOLS.items():
        for tool in candidates:
            if tool in allowed:
                tools[page_tool] = tool
                break
    return tools


def _objects(user: User, lease: Assignment) -> list[dict[str, Any]]:
    masklets = access.masklets_for_user(user).filter(video_id=lease.video_id)
    if lease.kind == Assignment.Kind.FIX:
        # A fix lease always names its masklet; 0 matches nothing if one ever does not.
        masklets = masklets.filter(pk=lease.masklet_id or 0)
    else:
        masklets = masklets.exclude(status=Masklet.Status.REJECTED)
    return [
        {
            "id": m.pk,
            "object_id": m.object_id,
            "label": m.label,
            "status": m.status,
            "kind": m.kind,
            "version": m.draft_version,
        }
        for m in masklets.order_by("object_id")
    ]


def workspace_payload(user: User, lease: Assignment) -> dict[str, Any]:
    """What the workspace script starts from (``annotate/workspace.html``'s json_script)."""
    video = lease.video
    project: Project = video.project
    editable = lease.state == Assignment.State.LEASED and lease.user_id == user.pk
    return {
        "lease": {
            "id": lease.pk,
            "kind": lease.kind,
            "state": lease.state,
            "user": lease.user.username if lease.user else None,
            "masklet": lease.masklet_id,
            "flagged_frames": list(lease.flagged_frames),
            "note": lease.note,
            "editable": editable,
        },
        "project": {
            "id": project.pk,
            "name": project.name,
            "phase": project.phase,
            "phase_label": Project.Phase(project.phase).label,
            "fps": project.annotation_fps,
        },
        "video": {
            "id": video.pk,
            "name": video.name,
            "width": video.width or 0,
            "height": video.height or 0,
            "frame_count": video.frame_count,
            "fps": video.annotation_fps or project.annotation_fps,
            "frame_url_prefix": FRAME_URL_PREFIX.format(video_id=video.pk),
            # the timeline's thumbnails: <prefix><index>.jpg (webapp.console_data_views)
            "thumb_url_prefix": reverse("frame-thumbnail", args=[video.pk, 0])[: -len("0.jpg")],
        },
        "tools": page_tools(project),
        "phase_tools": list(phases.allowed_tools(project)),
        "objects": _objects(user, lease),
        "routes": _routes(),
    }


@login_required
def workspace(request: HttpRequest, lease_id: int) -> HttpResponse:
    """The annotator's workspace on a leased video (or fix). Someone else's lease is a 404;
    a manager may open any lease of their project, read only."""
    user = page_user(request)
    lease = leases.access_lease(user, lease_id)
    payload = workspace_payload(user, lease)
    return render(
        request,
        "annotate/workspace.html",
        {"lease": lease, "video": lease.video, "payload": payload},
    )
