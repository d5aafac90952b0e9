"""Pruning model-session rows: idle ones and those of lost workers go, a live session's row
stays, and a click whose row was pruned is served by a rebuilt session with the same mask."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from engine.annotation import drafts, serving
from engine.annotation.session_pruning import do_prune_model_sessions
from engine.annotation.sessions import CACHE
from engine.models import ModelSession, User, Video
from tests.engine.annotation._serving import (
    CALLS,
    INPROC_WORKER,
    clip_video,
    leased_objects,
    serving_settings,  # noqa: F401  (fixture)
    tiny_model,  # noqa: F401  (fixture)
    version_of,
)
from tests.engine.annotation.test_serving import click as serve_click

pytestmark = pytest.mark.django_db

IDLE, GRACE = 1800, 120


@pytest.fixture
def limits(settings: Any) -> Any:
    settings.ANNOTATION_SESSION_IDLE_SECONDS = IDLE
    settings.ANNOTATION_SESSION_LOST_GRACE_SECONDS = GRACE
    return settings


def _video(project: Any, name: str) -> Video:
    return Video.objects.create(
        project=project, name=name, status=Video.Status.READY, width=8, height=8, frame_count=2
    )


def _row(video: Video, user: Any, worker: str, age_s: float, *, queue: bool = True) -> int:
    row = ModelSession.objects.create(
        video=video,
        user=user,
        model_key="test_tiny:abc",
        worker=worker,
        queue=f"{worker}.dq2" if queue else "",
        last_used=timezone.now() - timedelta(seconds=age_s),
    )
    return int(row.pk)


def test_idle_rows_and_rows_of_lost_workers_are_deleted(
    project: Any, annotator: Any, manager: Any, limits: Any
) -> None:
    # given: rows of a live worker and a lost one, fresh, past the grace, and idle
    v = [_video(project, f"v{i}.mp4") for i in range(6)]
    live_recent = _row(v[0], annotator, "inter@a", 5)
    live_busy = _row(v[1], annotator, "inter@a", GRACE + 60)  # a live worker's quiet session
    live_idle = _row(v[2], annotator, "inter@a", IDLE + 60)
    lost_recent = _row(v[3], annotator, "inter@gone", GRACE - 30)  # may only be slow to answer
    lost_old = _row(v[4], annotator, "inter@gone", GRACE + 30)
    simulated = _row(v[5], annotator, "simulated", GRACE + 30, queue=False)
    other_user = _row(v[0], manager, "inter@gone", GRACE + 30)
    # when the sweep runs with inter@a answering the ping
    result = do_prune_model_sessions({"inter@a"})
    # then
    assert result.idle == [live_idle]
    assert result.lost == sorted([lost_old, other_user])
    kept = set(ModelSession.objects.values_list("pk", flat=True))
    assert kept == {live_recent, live_busy, lost_recent, simulated}
    # a second sweep finds nothing more
    assert do_prune_model_sessions({"inter@a"}).to_json() == {"idle": [], "lost": []}


def test_when_the_ping_failed_only_idle_rows_go(project: Any, annotator: Any, limits: Any) -> None:
    v = [_video(project, f"v{i}.mp4") for i in range(2)]
    old = _row(v[0], annotator, "inter@gone", GRACE + 30)
    idle = _row(v[1], annotator, "inter@gone", IDLE + 1)
    result = do_prune_model_sessions(None)
    assert (result.idle, result.lost) == ([idle], [])
    assert list(ModelSession.objects.values_list("pk", flat=True)) == [old]


def test_a_row_used_after_the_sweep_read_it_stays(
    project: Any, annotator: Any, limits: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an idle row that a click refreshes between the sweep's read and its delete
    video = _video(project, "v.mp4")
    pk = _row(video, annotator, "inter@a", IDLE + 60)
    from engine.annotation import session_pruning

    real_filter = ModelSession.objects.filter
    reads: list[list[int]] = []

    def filter_then_click(*args: Any, **kwargs: Any) -> Any:
        query = real_filter(*args, **kwargs)
        if not reads:
            reads.append(list(query.values_list("pk", flat=True)))
            ModelSession.objects.filter(pk=pk).update(last_used=timezone.now())
        return query

    monkeypatch.setattr(session_pruning.ModelSession.objects, "filter", filter_then_click)
    result = do_prune_model_sessions({"inter@a"})
    # then the delete re-checked the condition: the live session's row is still there
    assert reads == [[pk]]
    assert result.idle == []
    assert ModelSession.objects.filter(pk=pk).exists()


@pytest.mark.usefixtures("tiny_model")
def test_a_click_after_its_row_was_pruned_is_served_with_the_same_mask(
    project: Any, annotator: Any, limits: Any
) -> None:
    # given a session served by a worker that has since gone away
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    user = User.objects.get(pk=annotator.pk)

    def click(points: list[list[float]], labels: list[int]) -> dict[str, Any]:
        return serve_click(masklet, 1, points, labels, user=user)

    click([[30, 30]], [1])
    live = click([[30, 30], [60, 50]], [1, 0])  # the unbroken session's mask
    drafts.do_undo(user, masklet, version_of(masklet))
    old = timezone.now() - timedelta(seconds=GRACE + 30)
    ModelSession.objects.filter(user=annotator).update(last_used=old)
    # when the sweep runs (the in-process worker did not answer) and the session is lost
    assert do_prune_model_sessions({"inter@other"}).lost != []
    assert not ModelSession.objects.filter(user=annotator).exists()
    CACHE.clear()
    CALLS.clear()
    rebuilt = click([[30, 30], [60, 50]], [1, 0])
    # then the click went to any interactive worker (no route), which rebuilt the session from
    # the saved prompts, gave the same mask and recorded its route again
    assert CALLS == [(serving.PROMPT_TASK, "interactive")]
    assert rebuilt["rle"] == live["rle"]
    assert ModelSession.objects.get(user=annotator).worker == INPROC_WORKER
