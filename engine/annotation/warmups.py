"""Warm-ups: the model worker does ahead of a click the work the click would wait for.

When a lease is taken, an interactive worker embeds the video's first frames for the annotator
(:func:`request_warm_session`); when the page's cursor rests on a frame, the worker holding the
annotator's session embeds it and, with the selected object, runs the memory attention of its
correction there (:func:`request_warm_frame`). Both are best effort: sent after commit, never
failing the request that sent them. :func:`handle_warm` is what the worker runs (the thin task
``workers.annotation_warm``).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from engine.errors import InvalidInput
from engine.inference import registry
from engine.jobs.dispatch import send_task_on_commit
from engine.models import Assignment, Masklet, ModelSession, Project, User, Video

from . import leases, serving
from .sessions import session_ops

logger = logging.getLogger(__name__)

WARM_TASK = "workers.annotation_warm"


def model_configured() -> bool:
    """Whether a model serves (a warm-up with none would only fail in the worker)."""
    try:
        registry.resolve_model_spec()
    except registry.ModelNotConfigured:
        return False
    return True


def request_warm_session(user: User, video: Video) -> None:
    """Best effort, after commit: an interactive worker embeds the video's first frames for
    this annotator (nothing happens when no model is configured or the send fails)."""
    if int(getattr(settings, "ANNOTATION_WARM_FRAMES", 0)) <= 0 or not model_configured():
        return
    # robust: a warm-up is an optimisation; a failed send is logged, never fails the lease
    send_task_on_commit(
        WARM_TASK, [video.pk, user.pk], queue=serving.INTERACTIVE_QUEUE, robust=True
    )


#: A frame warm-up this old when a worker takes it is dropped: the annotator has moved on, and
#: on a CPU worker an embedding nobody waits for would only delay their next click.
WARM_STALE_SECONDS = 3.0


def request_warm_frame(
    user: User, lease: Assignment, frame_index: int, masklet_id: int | None = None
) -> bool:
    """Best effort: the worker holding the annotator's session (any interactive worker when
    none does) embeds frame ``frame_index`` of the leased video, so that the first click there
    finds its features (the page asks when its cursor rests on a frame). With ``masklet_id``
    (the object selected on the page) a phase 3 worker also runs the memory attention a
    correction of that object on the frame needs, when the frame is tracked for it. False when
    no model is configured or ``ANNOTATION_WARM_ON_REST`` is off. Raises for a lease the
    caller does not hold, a frame outside the video or a masklet of another video."""
    video = lease.video
    leases.check_lease_in_force(user, lease)
    if isinstance(frame_index, bool) or not 0 <= frame_index < (video.frame_count or 0):
        raise InvalidInput(f"frame_index must be within 0..{(video.frame_count or 0) - 1}")
    object_id = None
    if masklet_id is not None:
        object_id = (
            Masklet.objects.filter(pk=masklet_id, video=video)
            .values_list("object_id", flat=True)
            .first()
        )
        if object_id is None:
            raise InvalidInput(f"masklet {masklet_id} is not an object of this video")
    if not getattr(settings, "ANNOTATION_WARM_ON_REST", True) or not model_configured():
        return False
    route = ModelSession.objects.filter(video=video, user=user).first()
    queue = route.queue if route is not None and route.queue else serving.INTERACTIVE_QUEUE
    args = [video.pk, user.pk, [frame_index], time.time(), object_id]
    send_task_on_commit(WARM_TASK, args, queue=queue, robust=True)
    return True


def handle_warm(
    video_id: int,
    user_id: int,
    *,
    worker: str,
    queue: str,
    frames: list[int] | None = None,
    sent_at: float | None = None,
    object_id: int | None = None,
) -> int:
    """Build (or sync) the annotator's session and embed ``frames`` of the video (default: its
    first ``ANNOTATION_WARM_FRAMES``); how many it embedded. In phase 3 with ``object_id``, the
    memory attention of that object's correction on each frame it was tracked on is run too
    (``VideoSession.prepare_correction``). Best effort: a missing model or video is logged and
    skipped, and a request older than ``WARM_STALE_SECONDS`` is dropped."""
    if sent_at is not None and time.time() - float(sent_at) > WARM_STALE_SECONDS:
        return 0
    video = Video.objects.select_related("project").filter(pk=video_id).first()
    user = User.objects.filter(pk=user_id).first()
    if video is None or user is None or not video.frame_count or not video.width:
        return 0
    try:
        loaded = registry.load_model()
    except registry.ModelNotConfigured as exc:
        logger.info("no warm-up: %s", exc)
        return 0
    if frames is None:
        count = min(int(getattr(settings, "ANNOTATION_WARM_FRAMES", 2)), video.frame_count)
        frames = list(range(count))
    wanted = [int(i) for i in frames if 0 <= int(i) < video.frame_count]
    live = serving.live_session(video, user, loaded)
    video_model = video.project.phase == Project.Phase.SAM2_FULL  # else the image predictor
    with live.lock:
        if video_model:
            live.sync(session_ops(video))
        for index in wanted:
            if video_model:
                live.embed_frame(index)
                if object_id is not None:
                    live.video.prepare_correction(index, int(object_id))
            else:
                live.image_predictor(index, loaded)
    serving.record_route(video, user, loaded, worker, queue)
    return len(wanted)
