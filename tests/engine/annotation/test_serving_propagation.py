"""Propagation jobs: one draft version written as it goes, cancel between frames, a re-run
after a killed worker overwrites instead of doubling, and the run replays exactly."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from engine.annotation import drafts, propagation, serving
from engine.annotation.serving import PromptRequest
from engine.annotation.sessions import CACHE
from engine.errors import Conflict, PermissionDenied
from engine.inference import registry
from engine.jobs.lifecycle import do_request_cancel
from engine.models import DraftEdit, InteractionEvent, Job, User
from tests.engine.annotation._serving import (
    N_FRAMES,
    SENT,
    clip_video,
    leased_objects,
    serving_settings,  # noqa: F401  (fixture)
    set_phase,
    tiny_model,  # noqa: F401  (fixture)
    version_of,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_model")]


def click(masklet: Any, frame: int, x: float, y: float, tool: str = "video_click") -> Any:
    req = PromptRequest(masklet.pk, version_of(masklet), frame, tool, ((x, y),), (1,))
    return serving.do_prompt(User.objects.get(username="alice"), masklet, req)


def start(masklet: Any, frame: int, direction: str) -> Job:
    user = User.objects.get(username="alice")
    return propagation.do_start_propagation(user, masklet, version_of(masklet), frame, direction)


def run_rows(masklet: Any, version: int) -> Counter[int]:
    rows = DraftEdit.objects.filter(masklet=masklet, version=version)
    return Counter(rows.values_list("frame_index", flat=True))


def test_propagation_writes_every_frame_once_in_one_undoable_version(
    project: Any, annotator: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: a click on frame 2 of a phase 3 clip
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    clicked = click(masklet, 2, 30, 30)
    # when: it propagates both ways
    with django_capture_on_commit_callbacks(execute=True):
        job = start(masklet, 2, "both")
    sent = list(SENT)
    assert sent == [("workers.propagate_masklet", [job.pk], "propagate")]
    propagation.run_propagation_job(job.pk)
    # then
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    version = job.result["version"]
    assert version == version_of(masklet) == clicked["version"] + 1
    assert run_rows(masklet, version) == dict.fromkeys(range(N_FRAMES), 1)
    state = drafts.draft_state(masklet)
    assert sorted(state.frames) == list(range(N_FRAMES))
    assert state.frames[2].rle == clicked["rle"]  # the conditioning frame keeps its mask
    assert state.edited_frames == [2]
    assert InteractionEvent.objects.filter(kind="propagate").count() == 1
    # the run is one save: a single undo removes it
    drafts.do_undo(annotator, masklet, version)
    assert sorted(drafts.draft_state(masklet).frames) == [2]
    # frames since a version: the run's frames (the page polls while it runs)
    changed, removed = propagation.frames_since(masklet, version)
    assert removed == [0, 1, 3, 4, 5]
    assert list(changed) == [2]


def test_a_lost_session_replays_the_run_and_gives_the_same_correction(
    project: Any, annotator: Any
) -> None:
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    click(masklet, 0, 20, 30)
    job = start(masklet, 0, "forward")
    propagation.run_propagation_job(job.pk)
    live = click(masklet, 4, 55, 30)  # a correction on a tracked frame, with memory
    drafts.do_undo(annotator, masklet, version_of(masklet))
    CACHE.clear()
    rebuilt = click(masklet, 4, 55, 30)
    assert rebuilt["rle"] == live["rle"]


def test_cancel_stops_between_frames_and_keeps_what_was_written(
    project: Any, annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    click(masklet, 0, 20, 30)
    job = start(masklet, 0, "forward")
    write = propagation._write_frame

    def write_then_cancel(job_row: Job, *args: Any) -> None:
        write(job_row, *args)
        if args[2] == 1:  # frame 1 written: the annotator presses cancel
            do_request_cancel(User.objects.get(username="alice"), job_row)

    monkeypatch.setattr(propagation, "_write_frame", write_then_cancel)
    propagation.run_propagation_job(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert run_rows(masklet, version_of(masklet)) == {0: 1, 1: 1}
    marker = DraftEdit.objects.get(masklet=masklet, prompt__run__job=job.pk)
    assert marker.prompt is not None
    assert marker.prompt["run"]["passes"] == [[False, 2]]


class Killed(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs."""


def test_a_rerun_after_a_killed_worker_leaves_no_frame_doubled(
    project: Any, annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: phase 2, a SAM mask on frame 3, a propagation whose worker dies at frame 1
    set_phase(project, 2)
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    click(masklet, 3, 40, 30, tool="image_click")
    job = start(masklet, 3, "both")
    write = propagation._write_frame

    def die_at_frame_1(job_row: Job, *args: Any) -> None:
        if args[2] == 1:
            raise Killed
        write(job_row, *args)

    monkeypatch.setattr(propagation, "_write_frame", die_at_frame_1)
    with pytest.raises(Killed):
        propagation.run_propagation_job(job.pk)
    version = version_of(masklet)
    assert run_rows(masklet, version) == {3: 1, 4: 1, 5: 1, 2: 1}
    # when: the recovery hands the job to a new worker (a stale heartbeat), which runs it again
    monkeypatch.setattr(propagation, "_write_frame", write)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    CACHE.clear()
    registry.clear_model_cache()
    propagation.run_propagation_job(job.pk)
    # then: the same version holds each frame exactly once, the mask prompt included
    job.refresh_from_db()
    assert (job.status, job.attempt) == (Job.Status.SUCCEEDED, 2), job.error
    assert version_of(masklet) == version
    assert run_rows(masklet, version) == dict.fromkeys(range(N_FRAMES), 1)
    marker = DraftEdit.objects.get(masklet=masklet, prompt__run__job=job.pk)
    assert marker.source == DraftEdit.Source.MASK
    assert marker.prompt is not None
    assert marker.prompt["run"]["passes"] == [[False, 3], [True, 4]]


def test_propagation_refusals(project: Any, annotator: Any) -> None:
    set_phase(project, 1)
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    with pytest.raises(PermissionDenied, match="does not allow propagate"):
        start(masklet, 0, "forward")
    set_phase(project, 2)
    masklet.video.project.refresh_from_db()
    with pytest.raises(Conflict, match="draw the object on frame 0"):
        start(masklet, 0, "forward")
    user = User.objects.get(username="alice")
    with pytest.raises(drafts.StaleDraft):
        propagation.do_start_propagation(user, masklet, 7, 0, "forward")
    with pytest.raises(ValueError, match="direction"):
        propagation.do_start_propagation(user, masklet, 0, 0, "sideways")
    assert not Job.objects.filter(kind="propagate").exists()
