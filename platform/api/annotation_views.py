"""REST endpoints of the annotator's workspace: the queue and leases, objects, drafts saved as
they happen (edits, undo, redo, submit, delete), the frames the page showed (telemetry) and the
Table 1 statistics.

Thin views: a serializer checks the request's shape, :mod:`engine.annotation` does the rest,
and engine errors become 4xx responses in ``api.errors`` (400 bad input, 403 role or phase,
404 not visible, 409 stale draft version or a lease the caller does not hold).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from api import annotation_serializers as s
from api.serving_serializers import SinceSerializer
from api.views import request_user
from engine.accounts import access
from engine.annotation import drafts, leases, phases, propagation, telemetry, warmups
from engine.errors import NotFound
from engine.models import Assignment, Masklet, Project, Role, User

PROJECT_PARAM = OpenApiParameter("project", int, required=True, description="project id")
VERSION_PARAM = OpenApiParameter("base_version", int, required=True)
ERRORS = {
    400: OpenApiResponse(description="Bad input"),
    403: OpenApiResponse(description="Role or phase does not allow it"),
    404: OpenApiResponse(description="No such object, or not visible"),
    409: OpenApiResponse(description="Stale draft version, or a lease the caller does not hold"),
}


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _project_param(request: Request) -> Project:
    project_id = _valid(s.ProjectRequestSerializer, request.query_params)["project"]
    return access.access_project(request_user(request), project_id)


def _lease_json(lease: Assignment) -> dict[str, Any]:
    return {
        "id": lease.pk,
        "kind": lease.kind,
        "state": lease.state,
        "user": lease.user.username if lease.user else None,
        "project": lease.video.project_id,
        "video": lease.video_id,
        "video_name": lease.video.name,
        "masklet": lease.masklet_id,
        "flagged_frames": list(lease.flagged_frames),
        "lease_expires_at": lease.lease_expires_at,
        "tools": list(phases.allowed_tools(lease.video.project)),
    }


def _masklet_json(masklet: Masklet) -> dict[str, Any]:
    return {
        "id": masklet.pk,
        "video": masklet.video_id,
        "object_id": masklet.object_id,
        "label": masklet.label,
        "status": masklet.status,
        "version": masklet.draft_version,
    }


def _access_masklet(user: User, masklet_id: int) -> Masklet:
    found = (
        access.masklets_for_user(user)
        .select_related("video", "video__project", "current_revision")
        .filter(pk=masklet_id)
        .first()
    )
    if found is None:
        raise NotFound("No such masklet")
    return found


@extend_schema(
    request=s.ProjectRequestSerializer, responses={200: s.LeaseSerializer, 204: None, **ERRORS}
)
@api_view(["POST"])
def take_next(request: Request) -> Response:
    """Lease the caller their next video (or fix) of ``project``; 204 when nothing is left."""
    user = request_user(request)
    project = access.access_project(
        user, _valid(s.ProjectRequestSerializer, request.data)["project"]
    )
    lease = leases.do_take_next_video(user, project)
    if lease is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    warmups.request_warm_session(user, lease.video)  # embed its first frames (best effort)
    return Response(_lease_json(lease))


@extend_schema(parameters=[PROJECT_PARAM], responses={200: s.LeaseSerializer(many=True), **ERRORS})
@api_view(["GET"])
def lease_list(request: Request) -> Response:
    """Leases in force in the project: all of them for its managers, one's own otherwise."""
    project = _project_param(request)
    held = leases.leases_visible_to(request_user(request), project)
    return Response([_lease_json(a) for a in held])


@extend_schema(request=None, responses={200: s.LeaseSerializer, **ERRORS})
@api_view(["POST"])
def lease_release(request: Request, lease_id: int) -> Response:
    """Give the work back to the queue (the holder, or a manager of the project)."""
    user = request_user(request)
    return Response(_lease_json(leases.do_release_lease(user, leases.access_lease(user, lease_id))))


@extend_schema(request=None, responses={200: s.LeaseSerializer, **ERRORS})
@api_view(["POST"])
def lease_renew(request: Request, lease_id: int) -> Response:
    """Extend the caller's lease (saving a draft extends it too)."""
    user = request_user(request)
    return Response(_lease_json(leases.do_renew_lease(user, leases.access_lease(user, lease_id))))


@extend_schema(request=None, responses={200: s.LeaseSerializer, **ERRORS})
@api_view(["POST"])
def lease_finish(request: Request, lease_id: int) -> Response:
    """The video is done (every object submitted): its annotation assignment is closed."""
    user = request_user(request)
    return Response(_lease_json(leases.do_finish_video(user, leases.access_lease(user, lease_id))))


@extend_schema(request=s.WarmFrameSerializer, responses={202: s.WarmedSerializer, **ERRORS})
@api_view(["POST"])
def lease_warm(request: Request, lease_id: int) -> Response:
    """Ask the model worker to embed a frame of the leased video now (best effort), so that
    the first click there finds its features, and with ``masklet_id`` to prepare that object's
    correction there; the page sends it when its cursor rests."""
    user = request_user(request)
    lease = leases.access_lease(user, lease_id)  # 404 before anything about the body
    body = _valid(s.WarmFrameSerializer, request.data)
    sent = warmups.request_warm_frame(user, lease, body["frame_index"], body["masklet_id"])
    return Response({"sent": sent}, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=s.LabelSerializer, responses={201: s.MaskletSummarySerializer, **ERRORS})
@api_view(["POST"])
def object_create(request: Request, lease_id: int) -> Response:
    """Add an object (a draft masklet with the next free object id) to the leased video."""
    user = request_user(request)
    label = _valid(s.LabelSerializer, request.data)["label"]
    masklet = drafts.do_create_object(user, leases.access_lease(user, lease_id), label)
    return Response(_masklet_json(masklet), status=status.HTTP_201_CREATED)


def _draft_json(masklet: Masklet) -> dict[str, Any]:
    state = drafts.draft_state(masklet)
    return {
        "masklet": _masklet_json(masklet),
        "version": state.version,
        "revision": masklet.current_revision_id,
        "frames": {str(i): f.rle for i, f in state.frames.items()},
        "frame_sources": {str(i): f.source for i, f in state.frames.items()},
        "edited_frames": state.edited_frames,
        "prompts": state.prompts,
        "can_undo": state.can_undo,
        "can_redo": state.can_redo,
    }


def _draft_since_json(masklet: Masklet, since: int) -> dict[str, Any]:
    """The draft with only the frames saved at version ``since`` or later (polling while a
    propagation writes): ``frames`` holds those still in the draft, ``removed_frames`` the rest."""
    data = _draft_json(masklet)
    changed, removed = propagation.frames_since(masklet, since)
    data["frames"] = {str(i): f.rle for i, f in changed.items()}
    data["frame_sources"] = {str(i): f.source for i, f in changed.items()}
    data["since"] = since
    data["removed_frames"] = removed
    return data


SINCE_PARAM = OpenApiParameter(
    "since",
    int,
    required=False,
    description="only frames saved at this draft version or later (the frames of the save at "
    "`since` are included again: a running propagation adds frames to its one version)",
)


@extend_schema(
    methods=["GET"], parameters=[SINCE_PARAM], responses={200: s.DraftSerializer, **ERRORS}
)
@extend_schema(methods=["DELETE"], parameters=[VERSION_PARAM], responses={204: None, **ERRORS})
@api_view(["GET", "DELETE"])
def draft(request: Request, masklet_id: int) -> Response:
    """GET: the draft (frames as COCO RLE, version, prompt log); with ``?since=`` only the
    frames changed since. DELETE: delete a draft object of the caller's leased video
    (``?base_version=``)."""
    user = request_user(request)
    masklet = _access_masklet(user, masklet_id)
    if request.method == "DELETE":
        version = _valid(s.VersionSerializer, request.query_params)["base_version"]
        drafts.do_delete_object(user, masklet, version)
        return Response(status=status.HTTP_204_NO_CONTENT)
    since = _valid(SinceSerializer, request.query_params).get("since")
    if since is not None:
        return Response(_draft_since_json(masklet, since))
    return Response(_draft_json(masklet))


@extend_schema(request=s.EditsRequestSerializer, responses={200: s.SavedSerializer, **ERRORS})
@api_view(["POST"])
def draft_edits(request: Request, masklet_id: int) -> Response:
    """Save one action's frame edits on top of ``base_version``; answers the new version."""
    user = request_user(request)
    masklet = _access_masklet(user, masklet_id)
    body = s.EditsRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    version = drafts.do_record_edits(
        user, masklet, body.validated_data["base_version"], body.frame_edits()
    )
    return Response({"version": version})


def _version_action(request: Request, masklet_id: int, action: Any) -> Response:
    user = request_user(request)
    masklet = _access_masklet(user, masklet_id)
    version = _valid(s.VersionSerializer, request.data)["base_version"]
    return Response({"version": action(user, masklet, version)})


@extend_schema(request=s.VersionSerializer, responses={200: s.SavedSerializer, **ERRORS})
@api_view(["POST"])
def draft_undo(request: Request, masklet_id: int) -> Response:
    """Undo the last save still in force."""
    return _version_action(request, masklet_id, drafts.do_undo)


@extend_schema(request=s.VersionSerializer, responses={200: s.SavedSerializer, **ERRORS})
@api_view(["POST"])
def draft_redo(request: Request, masklet_id: int) -> Response:
    """Re-apply the last undone save."""
    return _version_action(request, masklet_id, drafts.do_redo)


@extend_schema(request=s.RenameSerializer, responses={200: s.MaskletSummarySerializer, **ERRORS})
@api_view(["POST"])
def draft_label(request: Request, masklet_id: int) -> Response:
    """Rename the object (a save of its draft on top of ``base_version``); the label goes into
    the revision on submit. Answers the object with its new label and draft version."""
    user = request_user(request)
    masklet = _access_masklet(user, masklet_id)
    body = _valid(s.RenameSerializer, request.data)
    drafts.do_rename_object(user, masklet, body["base_version"], body["label"])
    return Response(_masklet_json(masklet))


@extend_schema(request=s.VersionSerializer, responses={201: s.SubmittedSerializer, **ERRORS})
@api_view(["POST"])
def draft_submit(request: Request, masklet_id: int) -> Response:
    """Make the draft an immutable revision and send the object to review."""
    user = request_user(request)
    masklet = _access_masklet(user, masklet_id)
    version = _valid(s.VersionSerializer, request.data)["base_version"]
    revision = drafts.do_submit_draft(user, masklet, version)
    data = {**_masklet_json(masklet), "revision": revision.pk, "revision_number": revision.number}
    return Response(data, status=status.HTTP_201_CREATED)


@extend_schema(request=s.EventsRequestSerializer, responses={201: s.RecordedSerializer, **ERRORS})
@api_view(["POST"])
def events(request: Request) -> Response:
    """Record the frames the workspace showed, in batches of at most 200 ``frame_view``
    events, each dated ``age_ms`` before the request. Only the lease's holder records views
    (409 otherwise); all or nothing."""
    serializer = s.EventsRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    recorded = telemetry.do_record_frame_views(request_user(request), serializer.frame_views())
    return Response({"recorded": len(recorded)}, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[PROJECT_PARAM], responses={200: s.StatsRowSerializer(many=True), **ERRORS}
)
@api_view(["GET"])
def stats(request: Request) -> Response:
    """Per video, phase and annotator: active seconds per frame, % edited frames, clicks per
    clicked frame. Managers see every annotator; everyone else sees their own rows."""
    user = request_user(request)
    project = _project_param(request)
    manager = access.project_role(user, project) == Role.MANAGER
    events = telemetry.project_events(project, None if manager else user)
    return Response([row.to_json() for row in telemetry.annotation_stats(events)])
