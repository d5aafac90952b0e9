"""Warming a frame: when the page's cursor rests on a frame, the model worker embeds it, so the
annotator's first click there runs no backbone, and with the selected object prepares its
correction there, so that click runs no memory attention; stale requests, other people's leases
and objects of other videos are refused or dropped."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from engine.annotation import propagation, serving, warmups
from engine.annotation.sessions import CACHE
from engine.errors import InvalidInput
from engine.inference import registry
from engine.models import Masklet, ModelVersion, User
from tests.engine.annotation._serving import (
    INPROC_WORKER,
    SENT,
    clip_video,
    leased_objects,
    serving_settings,  # noqa: F401  (fixture)
    set_phase,
    tiny_model,  # noqa: F401  (fixture)
    version_of,
)
from tests.engine.annotation.test_serving import click

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_model")]


def _run_sent_warm_ups() -> int:
    """Run the warm-up tasks sent so far as the worker would; how many frames they embedded."""
    embedded = 0
    for name, args, _queue in SENT:
        assert name == warmups.WARM_TASK
        video_id, user_id, frames, sent_at, object_id = args
        embedded += warmups.handle_warm(
            video_id,
            user_id,
            worker=INPROC_WORKER,
            queue=f"{INPROC_WORKER}.dq2",
            frames=frames,
            sent_at=sent_at,
            object_id=object_id,
        )
    SENT.clear()
    return embedded


def _other_video_masklet(project: Any) -> Masklet:
    return Masklet.objects.create(video=clip_video(project, name="other.mp4"), object_id=1)


def _session(video: Any, user: Any) -> Any:
    return CACHE.get_or_create(video, user.pk, registry.load_model())


@pytest.mark.parametrize("phase", [1, 3])
def test_a_warmed_frame_needs_no_backbone_at_the_first_click(
    project: Any, annotator: Any, phase: int, django_capture_on_commit_callbacks: Any
) -> None:
    # given: a leased clip; the annotator's session lives on a worker after a first click
    set_phase(project, phase)
    clip_video(project)
    lease, (masklet,) = leased_objects(annotator, project)
    tool = "video_click" if phase == 3 else "image_click"
    click(masklet, 0, [[30, 30]], [1], tool=tool)
    session = _session(masklet.video, annotator)
    before = session.video.backbone_runs, len(session.images)
    # when: the page's cursor rests on frame 4
    with django_capture_on_commit_callbacks(execute=True):
        assert warmups.request_warm_frame(annotator, lease, 4) is True
    ((_, args, queue),) = SENT
    assert queue == f"{INPROC_WORKER}.dq2"  # the worker holding the session
    assert _run_sent_warm_ups() == 1
    # then: frame 4 is embedded once, and the click there computes nothing more
    if phase == 3:
        assert session.video.backbone_runs == before[0] + 1
        click(masklet, 4, [[50, 30]], [1], tool=tool)
        assert session.video.backbone_runs == before[0] + 1
    else:
        assert 4 in session.images
        assert len(session.images) == before[1] + 1
        predictor = session.images[4]
        click(masklet, 4, [[50, 30]], [1], tool=tool)
        assert session.images[4] is predictor


@pytest.mark.parametrize("selected", [True, False])
def test_a_warmed_correction_finds_its_memory_attention_done(
    project: Any, annotator: Any, selected: bool, django_capture_on_commit_callbacks: Any
) -> None:
    # given: phase 3, a click on frame 0 propagated forward
    set_phase(project, 3)
    clip_video(project)
    lease, (masklet,) = leased_objects(annotator, project)
    click(masklet, 0, [[30, 30]], [1], tool="video_click")
    user = User.objects.get(pk=annotator.pk)
    with django_capture_on_commit_callbacks(execute=True):
        job = propagation.do_start_propagation(user, masklet, version_of(masklet), 0, "forward")
    SENT.clear()
    propagation.run_propagation_job(job.pk)
    calls: list[int] = []
    attention = registry.load_model().model.memory_attention
    hook = attention.register_forward_hook(lambda *_: calls.append(1))
    try:
        # when: the cursor rests on tracked frame 3, with the object selected (or none)
        with django_capture_on_commit_callbacks(execute=True):
            assert warmups.request_warm_frame(user, lease, 3, masklet.pk if selected else None)
        _run_sent_warm_ups()
        warming = len(calls)
        # then: the correction there runs no memory attention of its own when it was warmed
        click(masklet, 3, [[40, 30]], [1], tool="video_click")
    finally:
        hook.remove()
    assert (warming, len(calls) - warming) == ((1, 0) if selected else (0, 1))


def test_a_stale_warm_up_is_dropped(project: Any, annotator: Any) -> None:
    clip_video(project)
    lease, (masklet,) = leased_objects(annotator, project)
    click(masklet, 0, [[30, 30]], [1])
    session = _session(masklet.video, annotator)
    runs = session.video.backbone_runs
    sent_long_ago = time.time() - warmups.WARM_STALE_SECONDS - 1
    embedded = warmups.handle_warm(
        masklet.video_id,
        annotator.pk,
        worker=INPROC_WORKER,
        queue="",
        frames=[3],
        sent_at=sent_long_ago,
    )
    assert embedded == 0
    assert session.video.backbone_runs == runs


def test_only_the_holder_warms_frames_inside_the_video(
    project: Any, annotator: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    clip_video(project)
    lease, _ = leased_objects(annotator, project)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(InvalidInput):
            warmups.request_warm_frame(annotator, lease, 6)  # 6 frames: 0..5
        with pytest.raises(InvalidInput):
            warmups.request_warm_frame(annotator, lease, -1)
        with pytest.raises(serving.leases.NotLeaseHolder):
            warmups.request_warm_frame(User.objects.get(pk=manager.pk), lease, 2)
        with pytest.raises(InvalidInput):  # an object of another video
            warmups.request_warm_frame(annotator, lease, 2, _other_video_masklet(project).pk)
        assert warmups.request_warm_frame(annotator, lease, 5) is True
        # an expired lease the sweep has not yet returned is not held either
        lease.lease_expires_at = timezone.now() - timedelta(seconds=1)
        with pytest.raises(serving.leases.NotLeaseHolder):
            warmups.request_warm_frame(annotator, lease, 5)
    # no session yet: any interactive worker
    ((name, args, queue),) = SENT
    assert (name, queue) == (warmups.WARM_TASK, serving.INTERACTIVE_QUEUE)
    assert args[:3] == [lease.video_id, annotator.pk, [5]]
    assert args[4] is None  # no object selected


def test_without_a_model_nothing_is_sent(
    project: Any, annotator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    clip_video(project)
    lease, _ = leased_objects(annotator, project)
    registry.clear_model_cache()
    ModelVersion.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert warmups.request_warm_frame(annotator, lease, 1) is False
    assert SENT == []


def test_switched_off_nothing_is_sent(
    project: Any, annotator: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    clip_video(project)
    lease, _ = leased_objects(annotator, project)
    settings.ANNOTATION_WARM_ON_REST = False
    with django_capture_on_commit_callbacks(execute=True):
        assert warmups.request_warm_frame(annotator, lease, 1) is False
    assert SENT == []
