"""Serving the model to the annotator's workspace: a click in, a mask saved and returned.

Web side (:func:`do_prompt`): the request is checked (role, phase, lease, input, version,
model) before anything runs, then sent on the ``interactive`` queue through
``engine.jobs.dispatch.call_task``. It goes first to the worker recorded in the annotator's
:class:`~engine.models.ModelSession` for the video (that worker's direct queue); if that worker
does not answer within ``ANNOTATION_DIRECT_TIMEOUT_SECONDS`` (it died, or it is gone), the
message expires there and the click goes to the shared ``interactive`` queue, where any worker
rebuilds the session from the saved state and prompts (:mod:`engine.annotation.sessions`).

Worker side (:func:`handle_prompt`, called by the thin task ``workers.annotation_prompt``): the
same checks again, the model on the frame, the mask saved as a draft edit with its prompt
(:func:`engine.annotation.drafts.do_record_edits`: undoable and replayable), and the session's
worker recorded for the next click. Errors travel back as ``{"error": {...}}`` and are raised
again on the web side as the same kind of :mod:`engine.errors` error.

Tools: ``image_click`` / ``image_box`` (phases 1 and 2) run the image predictor on that frame
only, with no memory; ``video_click`` / ``video_box`` (phase 3) prompt the SAM 2 video session,
where a click on a tracked frame is a correction and an untracked frame becomes a conditioning
frame, as in Meta's predictor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from engine import errors
from engine.errors import Conflict, InvalidInput
from engine.inference import registry
from engine.jobs.dispatch import NoReply, call_task
from engine.masks.rle import encode_rle
from engine.models import (
    DraftEdit,
    Masklet,
    ModelSession,
    ModelVersion,
    User,
    Video,
)

from . import drafts, leases, phases
from .edits import FrameEdit, Prompt, check_edits
from .sessions import CACHE, LiveSession, Op, model_key, row_ops

if TYPE_CHECKING:
    from engine.inference.registry import LoadedModel
    from model.image_predictor import ImagePrediction

logger = logging.getLogger(__name__)

PROMPT_TASK = "workers.annotation_prompt"
INTERACTIVE_QUEUE = "interactive"
IMAGE_TOOLS = (phases.IMAGE_CLICK, phases.IMAGE_BOX)
VIDEO_TOOLS = (phases.VIDEO_CLICK, phases.VIDEO_BOX)
PROMPT_TOOLS = (*IMAGE_TOOLS, *VIDEO_TOOLS)
HOW_TO_GET_A_MODEL = (
    "No SAM 2 model is configured. Download the official tiny model with "
    "`python -m model download sam2.1_hiera_tiny --dest DIR`, then set SAM2_CHECKPOINT="
    "sam2.1_hiera_tiny and SAM2_CHECKPOINT_DIR=DIR (or SAM2_CHECKPOINT=/path/to/file.pt with "
    "SAM2_CONFIG), or promote a trained ModelVersion."
)
_ERRORS: dict[str, type[errors.EngineError]] = {
    cls.code: cls
    for cls in (
        errors.InvalidInput,
        errors.NotFound,
        errors.PermissionDenied,
        errors.Conflict,
        errors.Gone,
        errors.Unavailable,
    )
}


@dataclass(frozen=True)
class PromptRequest:
    """One click or box: the frame's full prompt for the object, pixels of the frame."""

    masklet_id: int
    base_version: int
    frame_index: int
    tool: str
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None

    def prompt(self) -> Prompt:
        return Prompt(self.points, self.labels, self.box)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PromptRequest:
        box = data.get("box")
        return cls(
            masklet_id=int(data["masklet_id"]),
            base_version=int(data["base_version"]),
            frame_index=int(data["frame_index"]),
            tool=str(data["tool"]),
            points=tuple((float(x), float(y)) for x, y in data.get("points") or ()),
            labels=tuple(int(v) for v in data.get("labels") or ()),
            box=None
            if box is None
            else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        )


# --- the model, visible ------------------------------------------------------------------------


_NAMES: dict[int, tuple[float, tuple[str, bool]]] = {}
_NAME_SECONDS = 30.0


def model_name(spec: registry.ModelSpec) -> tuple[str, bool]:
    """``(name, demo)`` of a model spec: the ModelVersion's name, or the checkpoint's. A demo
    model (trained here on procedural videos) is a version whose metrics say ``"demo": true``.
    A version's answer is kept for ``_NAME_SECONDS`` (every click reports it)."""
    if spec.model_version_id is not None:
        cached = _NAMES.get(spec.model_version_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < _NAME_SECONDS:
            return cached[1]
        version = ModelVersion.objects.filter(pk=spec.model_version_id).first()
        if version is not None:
            answer = version.name, bool((version.metrics or {}).get("demo"))
            _NAMES[spec.model_version_id] = (now, answer)
            return answer
    return spec.location.rsplit("/", 1)[-1], False


def model_status() -> dict[str, Any]:
    """Which model serves the workspace, for the page's label (loads nothing)."""
    try:
        spec = registry.resolve_model_spec()
    except registry.ModelNotConfigured as exc:
        return {
            "configured": False,
            "name": None,
            "config": None,
            "demo": False,
            "how_to": f"{HOW_TO_GET_A_MODEL} ({exc})",
        }
    name, demo = model_name(spec)
    return {"configured": True, "name": name, "config": spec.config, "demo": demo, "how_to": ""}


def check_model() -> registry.ModelSpec:
    try:
        return registry.resolve_model_spec()
    except registry.ModelNotConfigured as exc:
        raise registry.ModelNotConfigured(f"{HOW_TO_GET_A_MODEL} ({exc})") from None


# --- checks shared by both sides -------------------------------------------------------------


def check_prompt(user: User, masklet: Masklet, request: PromptRequest) -> None:
    """Everything that can refuse a click before the model runs: 403 role or phase, 400 input,
    409 state, version or lease. Reads only; the save re-checks under the masklet's lock."""
    leases.check_annotator(user, masklet.video.project)
    check_request(masklet, request)
    if leases.holder_lease(user, masklet) is None:
        raise leases.NotLeaseHolder("You do not hold this video (or fix); take it first")


def check_request(masklet: Masklet, request: PromptRequest) -> None:
    """The checks of :func:`check_prompt` that read no more rows (phase, input, state, version):
    what the worker checks again before the model runs. The role and the lease, checked by the
    web side, are checked again under the masklet's lock when the mask is saved."""
    project = masklet.video.project
    if request.tool not in PROMPT_TOOLS:
        raise InvalidInput(f"tool must be one of {', '.join(PROMPT_TOOLS)}, got {request.tool!r}")
    phases.check_tool(project, request.tool)
    edit = FrameEdit(request.frame_index, request.tool, None, request.prompt())
    check_edits(masklet.video, [edit])
    if masklet.status not in drafts.EDITABLE:
        raise Conflict(f"the object is {masklet.status}; only drafts and fixes can be edited")
    if masklet.draft_version != request.base_version:
        raise drafts.StaleDraft(
            f"the draft is at version {masklet.draft_version}, not {request.base_version}: it "
            "was saved elsewhere (another tab or user); reload it and click again"
        )


# --- web side ----------------------------------------------------------------------------------


def do_prompt(user: User, masklet: Masklet, request: PromptRequest) -> dict[str, Any]:
    """Serve one click (see the module docstring); returns the saved version and the mask."""
    check_prompt(user, masklet, request)
    check_model()
    payload: dict[str, Any] = {"user_id": user.pk, **request.to_json()}
    route = ModelSession.objects.filter(video_id=masklet.video_id, user=user).first()
    if route is not None:
        # what the row says, so that the worker it names need not write it again
        age = (timezone.now() - route.last_used).total_seconds()
        payload["route"] = {"worker": route.worker, "model_key": route.model_key, "age": age}
    reply: Any = None
    if route is not None and route.queue:
        try:
            reply = call_task(
                PROMPT_TASK,
                [payload],
                queue=route.queue,
                timeout=float(settings.ANNOTATION_PROMPT_TIMEOUT_SECONDS),
                pickup_timeout=float(settings.ANNOTATION_DIRECT_TIMEOUT_SECONDS),
            )
        except NoReply:
            logger.warning("session worker %s did not answer; any worker rebuilds", route.worker)
    if reply is None:
        reply = call_task(
            PROMPT_TASK,
            [payload],
            queue=INTERACTIVE_QUEUE,
            timeout=float(settings.ANNOTATION_PROMPT_TIMEOUT_SECONDS),
        )
    return unpack_reply(reply)


def unpack_reply(reply: Any) -> dict[str, Any]:
    """The worker's answer, or its error raised again as the same kind of engine error."""
    if not isinstance(reply, dict) or ("ok" not in reply and "error" not in reply):
        raise errors.Unavailable("the interactive worker sent an unreadable answer")
    if "error" in reply:
        error = reply["error"]
        cls = _ERRORS.get(str(error.get("code")), errors.Unavailable)
        raise cls(str(error.get("message", "the interactive worker failed")))
    return dict(reply["ok"])


# --- worker side -------------------------------------------------------------------------------


def handle_prompt(payload: dict[str, Any], *, worker: str, queue: str) -> dict[str, Any]:
    """Serve one click in this worker; ``{"ok": {...}}`` or ``{"error": {code, message}}``.

    ``worker`` and ``queue`` name this worker and its direct queue, recorded for the next click.
    """
    from model._prompts import PromptError

    try:
        return {"ok": _serve(PromptRequest.from_json(payload), payload, worker, queue)}
    except errors.EngineError as exc:
        return {"error": {"code": exc.code, "message": str(exc)}}
    except PromptError as exc:
        return {"error": {"code": InvalidInput.code, "message": str(exc)}}
    except (KeyError, TypeError, ValueError) as exc:
        return {"error": {"code": InvalidInput.code, "message": f"bad prompt request: {exc}"}}


def live_session(video: Video, user: User, loaded: LoadedModel) -> LiveSession:
    """This process's session of ``user`` on ``video`` (created on first use)."""
    return CACHE.get_or_create(video, user.pk, loaded)


def _serve(request: PromptRequest, payload: dict[str, Any], worker: str, queue: str) -> Any:
    user = User.objects.get(pk=int(payload["user_id"]))
    masklet = (
        Masklet.objects.select_related("video", "video__project", "current_revision")
        .filter(pk=request.masklet_id)
        .first()
    )
    if masklet is None:
        raise errors.NotFound("No such masklet")
    check_request(masklet, request)
    loaded = registry.load_model(check_model())  # the spec resolved once (one query)
    video = masklet.video
    live = live_session(video, user, loaded)
    with live.lock:
        ops: list[Op] = []
        if request.tool in IMAGE_TOOLS:
            mask, score = _image_mask(live, loaded, request)
        else:
            ops = live.current_log(video)
            # the click is applied before it is saved; if the save fails the session no longer
            # matches the log, so it is rebuilt on the next use
            live.applied = None if live.applied is None else [*live.applied, ("pending",)]
            mask, score = _video_mask(live, masklet.object_id, request), None
        rle = encode_rle(mask) if mask.any() else None
        edit = FrameEdit(request.frame_index, request.tool, rle, request.prompt())
        try:
            version, (row,) = drafts.do_save_edits(user, masklet, request.base_version, [edit])
        except BaseException:
            if request.tool in VIDEO_TOOLS:
                live.applied = None
            raise
        if request.tool in VIDEO_TOOLS and live.applied is not None:
            if row.pk is None:  # a database that returns no ids from inserts
                row = DraftEdit.objects.get(masklet=masklet, version=version)
            ops += row_ops(masklet.object_id, row)
            live.applied[-1] = ops[-1].key
            live.extended(ops, masklet.pk, request.base_version, version)
            # shared for the propagate worker and any worker that rebuilds this session
            live.save_state_later(ops)
    if not _route_is_current(payload.get("route"), loaded, worker):
        record_route(video, user, loaded, worker, queue)
    name, demo = model_name(loaded.spec)
    return {
        "version": version,
        "frame_index": request.frame_index,
        "rle": rle,
        "score": score,
        "model": {"name": name, "demo": demo},
    }


def _image_mask(
    live: LiveSession, loaded: LoadedModel, request: PromptRequest
) -> tuple[np.ndarray, float]:
    """SAM on one frame: bool (H, W) mask and its predicted IoU. A single click asks for three
    masks and keeps the best (SAM's ambiguity handling); more clicks or a box ask for one.

    Each further click also gets the low-res logits of the clicks before it as the mask prompt
    (SAM's interactive refinement, as our training samples corrections). A session without them
    (another worker, an undo) recomputes them click by click from the first, so the mask is a
    function of the frame's click list whichever worker serves it."""
    predictor = live.image_predictor(request.frame_index, loaded)
    points = np.asarray(request.points, dtype=np.float32).reshape(-1, 2) if request.points else None
    labels = np.asarray(request.labels, dtype=np.int32) if request.points else None
    if request.box is not None or points is None or labels is None:
        single = predictor.predict(
            point_coords=points,
            point_labels=labels,
            box=None if request.box is None else np.asarray(request.box, dtype=np.float32),
            multimask_output=False,
        )
        best = int(np.argmax(single.iou_predictions))
        return np.asarray(single.masks[best], dtype=bool), float(single.iou_predictions[best])
    count = len(points)
    key = (request.masklet_id, request.frame_index)
    clicks = tuple((float(x), float(y), int(label)) for (x, y), label in zip(points, labels))
    known = live.image_logits.get(key)
    start, logits = 0, None
    out: ImagePrediction | None = None
    if known is not None and count > 1 and known[0] == clicks[:-1]:
        start, logits = count - 1, known[1]
    for k in range(start, count):
        out = predictor.predict(
            point_coords=points[: k + 1],
            point_labels=labels[: k + 1],
            mask_input=logits,
            multimask_output=k == 0,
        )
        best = int(np.argmax(out.iou_predictions))
        logits = out.low_res_logits[best][None]
    assert out is not None  # count >= 1
    assert logits is not None
    live.remember_image_logits(key, clicks, logits)
    return np.asarray(out.masks[best], dtype=bool), float(out.iou_predictions[best])


def _video_mask(live: LiveSession, obj_id: int, request: PromptRequest) -> np.ndarray:
    """SAM 2 with memory: bool (H, W) mask of ``obj_id`` on the frame after the prompt."""
    result = live.video.add_points(
        request.frame_index,
        obj_id,
        np.asarray(request.points, dtype=np.float32).reshape(-1, 2) if request.points else None,
        np.asarray(request.labels, dtype=np.int32) if request.points else None,
        box=None if request.box is None else np.asarray(request.box, dtype=np.float32),
    )
    index = result.obj_ids.index(obj_id)
    return np.asarray(result.logits[index, 0].numpy() > 0.0)


#: A route row this old is refreshed by the click its worker serves (its ``last_used`` keeps the
#: row from being pruned: ``engine.annotation.session_pruning``'s grace is 120 s by default).
ROUTE_REFRESH_SECONDS = 30.0


def _route_is_current(route: Any, loaded: LoadedModel, worker: str) -> bool:
    """Whether the route row the web side read already names this worker and model, recently
    used (then the click saves its two queries)."""
    if not isinstance(route, dict):
        return False
    return (
        route.get("worker") == worker[:255]
        and route.get("model_key") == model_key(loaded)
        and isinstance(route.get("age"), int | float)
        and 0 <= float(route["age"]) < ROUTE_REFRESH_SECONDS
    )


def record_route(video: Video, user: User, loaded: LoadedModel, worker: str, queue: str) -> None:
    ModelSession.objects.update_or_create(
        video=video,
        user=user,
        defaults={
            "model_key": model_key(loaded),
            "worker": worker[:255],
            "queue": queue[:300],
            "last_used": timezone.now(),
        },
    )
