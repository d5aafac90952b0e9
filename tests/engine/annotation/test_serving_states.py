"""Sessions shared between workers through saved states: the propagate worker starts from the
interactive worker's state instead of replaying every click, the interactive worker continues
from the run's state instead of running the propagation again, and both give exactly the masks
of a session rebuilt by replaying the whole log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from engine.annotation import drafts, propagation, serving
from engine.annotation.serving import PromptRequest
from engine.annotation.sessions import CACHE, SessionCache, wait_for_saved_states
from engine.inference import registry
from engine.models import Job, User
from tests.engine.annotation._serving import (
    N_FRAMES,
    clip_video,
    leased_objects,
    serving_settings,  # noqa: F401  (fixture)
    tiny_model,  # noqa: F401  (fixture)
    version_of,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_model")]


def click(masklet: Any, frame: int, points: list[list[float]], labels: list[int]) -> Any:
    req = PromptRequest(
        masklet.pk,
        version_of(masklet),
        frame,
        "video_click",
        tuple((float(x), float(y)) for x, y in points),
        tuple(labels),
    )
    return serving.do_prompt(User.objects.get(username="alice"), masklet, req)


@pytest.fixture
def calls() -> Iterator[Counter[str]]:
    """Forward calls of the model's mask decoder and memory encoder, by module name."""
    counts: Counter[str] = Counter()
    model = registry.load_model().model
    hooks = [
        getattr(model, name).register_forward_hook(lambda *_args, n=name: counts.update([n]))
        for name in ("sam_mask_decoder", "memory_encoder")
    ]
    yield counts
    for hook in hooks:
        hook.remove()


def test_workers_hand_the_session_over_through_saved_states(
    project: Any, annotator: Any, calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: three clicks on frame 0 served by the "interactive worker" (this process's CACHE)
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    click(masklet, 0, [[20, 30]], [1])
    click(masklet, 0, [[20, 30], [50, 50]], [1, 0])
    click(masklet, 0, [[20, 30], [50, 50], [25, 35]], [1, 0, 1])
    wait_for_saved_states()
    interactive = CACHE
    # when: the "propagate worker" (another cache, nothing in it) runs a forward propagation
    other = SessionCache()
    monkeypatch.setattr(serving, "CACHE", other)
    calls.clear()
    job = propagation.do_start_propagation(annotator, masklet, version_of(masklet), 0, "forward")
    propagation.run_propagation_job(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    # then: it loaded the clicks' state (no click re-run: one decoder call per tracked frame)
    (prop,) = [other.get_or_create(masklet.video, annotator.pk, registry.load_model())]
    assert (prop.loads, prop.replays) == (1, 0)
    assert calls["sam_mask_decoder"] == N_FRAMES - 1
    assert prop.video.backbone_runs == N_FRAMES - 1  # frame 0's features came from the store
    # when: the interactive worker serves a correction on a tracked frame
    monkeypatch.setattr(serving, "CACHE", interactive)
    calls.clear()
    live = click(masklet, 4, [[55, 30]], [1])
    # then: it loaded the run's state instead of propagating again (one decoder call)
    (inter,) = [interactive.get_or_create(masklet.video, annotator.pk, registry.load_model())]
    assert (inter.loads, inter.replays) == (1, 0)
    assert calls == {"sam_mask_decoder": 1}
    # and the masks are those of a session rebuilt by replaying the whole log, model included
    drafts.do_undo(annotator, masklet, version_of(masklet))
    CACHE.clear()
    serving_states_off(monkeypatch)
    calls.clear()
    replayed = click(masklet, 4, [[55, 30]], [1])
    assert replayed["rle"] == live["rle"]
    assert calls["sam_mask_decoder"] == 3 + (N_FRAMES - 1) + 1  # clicks, run, correction
    other.clear()


def serving_states_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.conf import settings

    monkeypatch.setattr(settings, "ANNOTATION_STATE_DIR", "", raising=False)


def test_a_lost_session_loads_the_saved_state_and_answers_as_before(
    project: Any, annotator: Any, calls: Counter[str]
) -> None:
    clip_video(project)
    _, (first, second) = leased_objects(annotator, project, 2)
    click(first, 0, [[20, 30]], [1])
    click(second, 0, [[75, 45]], [1])
    click(first, 3, [[45, 30]], [1])
    # saved before the next click (a save the session has moved past is skipped, by design)
    wait_for_saved_states()
    live = click(first, 3, [[45, 30], [60, 40]], [1, 0])
    drafts.do_undo(annotator, first, version_of(first))
    wait_for_saved_states()
    CACHE.clear()  # the worker is gone
    calls.clear()
    rebuilt = click(first, 3, [[45, 30], [60, 40]], [1, 0])
    assert rebuilt["rle"] == live["rle"]
    # the state after the first three clicks was loaded: only the new click ran the model
    assert calls == {"sam_mask_decoder": 1}
    (session,) = [CACHE.get_or_create(first.video, annotator.pk, registry.load_model())]
    assert (session.loads, session.replays) == (1, 0)


def test_old_session_states_and_features_over_the_bound_are_pruned(tmp_path: Any) -> None:
    import os
    import time

    from engine.annotation.session_store import prune_features, prune_states

    sessions = tmp_path / "sessions"
    old, recent = sessions / "old", sessions / "recent"
    for folder in (old / "00000001-abc", recent / "00000001-def"):
        folder.mkdir(parents=True)
    hour_ago = time.time() - 3600
    os.utime(old / "00000001-abc", (hour_ago, hour_ago))
    assert prune_states(sessions, max_age=600) == 1
    assert sorted(p.name for p in sessions.iterdir()) == ["recent"]
    features = tmp_path / "features" / "video"
    features.mkdir(parents=True)
    for n in range(4):
        path = features / f"{n}.pt"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (hour_ago + n, hour_ago + n))
    (tmp_path / "features" / "pos-model.pt").write_bytes(b"x" * 1000)  # not a frame's
    assert prune_features(tmp_path / "features", limit_bytes=2000) == 2
    assert sorted(p.name for p in features.iterdir()) == ["2.pt", "3.pt"]
    assert (tmp_path / "features" / "pos-model.pt").exists()


def test_a_click_reads_the_log_only_when_the_database_changed_it(
    project: Any, annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.annotation import sessions

    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    reads: list[int] = []
    real = sessions.session_ops

    def counted(video: Any, **kw: Any) -> Any:
        reads.append(video.pk)
        return real(video, **kw)

    monkeypatch.setattr(sessions, "session_ops", counted)
    click(masklet, 0, [[20, 30]], [1])
    second = click(masklet, 0, [[20, 30], [50, 50]], [1, 0])
    third = click(masklet, 2, [[30, 30]], [1])
    assert len(reads) == 1  # the session's own saves keep it current
    # an undo (any save elsewhere) changes the log: it is read and the session replayed
    drafts.do_undo(annotator, masklet, version_of(masklet))
    drafts.do_undo(annotator, masklet, version_of(masklet))
    again = click(masklet, 0, [[20, 30], [50, 50]], [1, 0])
    assert len(reads) == 2
    assert again["rle"] == second["rle"]
    assert click(masklet, 2, [[30, 30]], [1])["rle"] == third["rle"]
    assert len(reads) == 2
