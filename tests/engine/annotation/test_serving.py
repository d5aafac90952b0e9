"""Serving a click: the model runs, the mask is saved in the draft with its prompt, and a lost
session rebuilt by replaying the saved prompts gives exactly the same masks."""

from __future__ import annotations

from typing import Any

import pytest

from engine.annotation import drafts, serving
from engine.annotation.serving import PromptRequest
from engine.annotation.sessions import CACHE
from engine.errors import Conflict, InvalidInput, PermissionDenied, Unavailable
from engine.masks.rle import decode_rle
from engine.models import DraftEdit, InteractionEvent, ModelSession, ModelVersion, User
from tests.engine.annotation._serving import (
    CALLS,
    INPROC_WORKER,
    clip_video,
    leased_objects,
    serving_settings,  # noqa: F401  (fixture)
    set_phase,
    tiny_model,  # noqa: F401  (fixture)
    version_of,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tiny_model")]


def prompt_request(
    masklet: Any, frame: int, points: list[Any], labels: list[int], **kw: Any
) -> PromptRequest:
    """A prompt on the draft's version (or ``base_version=``), a video click by default."""
    return PromptRequest(
        masklet_id=masklet.pk,
        base_version=kw.get("base_version", version_of(masklet)),
        frame_index=frame,
        tool=kw.get("tool", "video_click"),
        points=tuple((float(x), float(y)) for x, y in points),
        labels=tuple(labels),
        box=kw.get("box"),
    )


def click(masklet: Any, frame: int, points: list[Any], labels: list[int], **kw: Any) -> Any:
    """Serve a prompt for alice (or ``user=``) on the draft's version (or ``base_version=``)."""
    req = prompt_request(masklet, frame, points, labels, **kw)
    return serving.do_prompt(kw.get("user") or User.objects.get(username="alice"), masklet, req)


def test_video_click_saves_the_mask_and_prompt_in_the_draft(project: Any, annotator: Any) -> None:
    # given: a phase 3 project, a leased clip with one object
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    # when
    answer = click(masklet, 1, [[30, 30]], [1])
    # then: the answer is the saved draft frame, with the prompt that made it
    assert answer["version"] == version_of(masklet) == 1
    assert answer["frame_index"] == 1
    assert answer["model"] == {"name": "tiny-r0", "demo": False}
    assert answer["score"] is None
    state = drafts.draft_state(masklet)
    assert state.frames[1].rle == answer["rle"]
    assert answer["rle"] is not None
    assert decode_rle(answer["rle"]).shape == (64, 96)
    assert state.prompts[0]["points"] == [[30.0, 30.0]]
    assert state.prompts[0]["tool"] == "video_click"
    assert InteractionEvent.objects.filter(kind="click", frame_index=1).count() == 1
    route = ModelSession.objects.get(video=masklet.video, user=annotator)
    assert route.worker == INPROC_WORKER
    assert route.queue == f"{INPROC_WORKER}.dq2"
    assert CALLS == [(serving.PROMPT_TASK, "interactive")]
    # the next click goes to the worker holding the session
    click(masklet, 1, [[30, 30], [60, 50]], [1, 0])
    assert CALLS[-1] == (serving.PROMPT_TASK, f"{INPROC_WORKER}.dq2")


def test_image_click_in_phase_1_uses_sam_on_the_frame(project: Any, annotator: Any) -> None:
    set_phase(project, 1)
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    answer = click(masklet, 2, [[35, 30]], [1], tool="image_click")
    assert isinstance(answer["score"], float)
    assert drafts.draft_state(masklet).frames[2].rle == answer["rle"]
    box = click(masklet, 3, [], [], tool="image_box", box=(30.0, 15.0, 60.0, 45.0))
    assert drafts.draft_state(masklet).frames[3].rle == box["rle"]


def test_further_image_clicks_refine_the_last_mask_on_any_worker(
    project: Any, annotator: Any
) -> None:
    import numpy as np

    from engine.inference import registry
    from engine.videos.frames import storage_frame_source
    from model.image_predictor import ImagePredictor

    set_phase(project, 1)
    video = clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    points = [[35.0, 30.0], [20.0, 20.0], [60.0, 40.0]]
    labels = [1, 0, 1]
    # what SAM's interactive predictor does: each click with the best logits of the last
    predictor = ImagePredictor(registry.load_model().model)
    predictor.set_image(storage_frame_source(video).read(2))
    logits, expected = None, []
    for k in range(3):
        out = predictor.predict(
            point_coords=np.array(points[: k + 1], dtype=np.float32),
            point_labels=np.array(labels[: k + 1], dtype=np.int32),
            mask_input=logits,
            multimask_output=k == 0,
        )
        best = int(np.argmax(out.iou_predictions))
        logits = out.low_res_logits[best][None]
        expected.append(out.masks[best])

    served = [
        decode_rle(click(masklet, 2, points[: k + 1], labels[: k + 1], tool="image_click")["rle"])
        for k in range(3)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(served, expected, strict=True))
    assert not np.array_equal(served[1], served[2])
    # a new worker (no logits kept) recomputes them from the first click: the same mask
    drafts.do_undo(annotator, masklet, version_of(masklet))
    CACHE.clear()
    again = click(masklet, 2, points, labels, tool="image_click")
    assert np.array_equal(decode_rle(again["rle"]), expected[2])


def _masks(answers: list[dict[str, Any]]) -> list[Any]:
    return [None if a["rle"] is None else decode_rle(a["rle"]) for a in answers]


def test_a_lost_session_is_rebuilt_by_replay_with_the_same_masks(
    project: Any, annotator: Any
) -> None:
    # given: two objects, clicks and a correction on several frames
    clip_video(project)
    _, (first, second) = leased_objects(annotator, project, 2)
    click(first, 0, [[20, 30]], [1])
    click(first, 0, [[20, 30], [50, 50]], [1, 0])
    click(second, 0, [[75, 45]], [1])
    click(first, 3, [[45, 30]], [1])
    base = version_of(first)
    live = click(first, 4, [[55, 30]], [1])
    # when: the click is undone, the session lost, and the same click served again
    drafts.do_undo(annotator, first, version_of(first))
    CACHE.clear()
    rebuilt = click(first, 4, [[55, 30]], [1])
    # then: the rebuilt session (a replay of every saved prompt) gives the identical mask
    assert base + 2 == rebuilt["version"] - 1
    assert rebuilt["rle"] == live["rle"]
    (session,) = [CACHE.get_or_create(first.video, annotator.pk, _loaded())]
    assert session.applied is not None
    assert len(session.applied) == 5


def _loaded() -> Any:
    from engine.inference import registry

    return registry.load_model()


def test_phase_refuses_tools_it_does_not_allow(project: Any, annotator: Any) -> None:
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    with pytest.raises(PermissionDenied, match="does not allow image_click"):
        click(masklet, 0, [[10, 10]], [1], tool="image_click")
    set_phase(project, 1)
    masklet.video.project.refresh_from_db()
    with pytest.raises(PermissionDenied, match="does not allow video_click"):
        click(masklet, 0, [[10, 10]], [1])
    assert not DraftEdit.objects.exists()
    assert CALLS == []


@pytest.mark.parametrize(
    ("points", "labels", "box", "message"),
    [
        ([[float("nan"), 3]], [1], None, "finite"),
        ([[float("inf"), 3]], [1], None, "finite"),
        ([[97, 3]], [1], None, "outside"),
        ([[-1, 3]], [1], None, "outside"),
        ([], [], None, "at least one point"),
        ([[5, 5]], [], None, "one label per point"),
        ([[5, 5]], [2], None, "labels are 1"),
    ],
)
def test_bad_prompts_are_refused_before_the_model_runs(
    project: Any, annotator: Any, points: Any, labels: Any, box: Any, message: str
) -> None:
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    with pytest.raises(InvalidInput, match=message):
        click(masklet, 0, points, labels, box=box)
    with pytest.raises(InvalidInput, match="outside the video"):
        click(masklet, 6, [[5, 5]], [1])
    assert not DraftEdit.objects.exists()
    assert CALLS == []


def test_stale_version_is_a_conflict_and_writes_nothing(project: Any, annotator: Any) -> None:
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    click(masklet, 0, [[20, 30]], [1])
    with pytest.raises(drafts.StaleDraft):
        click(masklet, 1, [[20, 30]], [1], base_version=0)
    assert DraftEdit.objects.count() == 1


def test_only_the_lease_holder_clicks(project: Any, annotator: Any, manager: Any) -> None:
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    with pytest.raises(Conflict, match="do not hold"):
        click(masklet, 0, [[20, 30]], [1], user=manager)


def test_without_a_model_the_answer_says_how_to_get_one(project: Any, annotator: Any) -> None:
    ModelVersion.objects.all().delete()
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    with pytest.raises(Unavailable, match="python -m model download sam2.1_hiera_tiny"):
        click(masklet, 0, [[20, 30]], [1])
    status = serving.model_status()
    assert status["configured"] is False
    assert "SAM2_CHECKPOINT" in status["how_to"]
    assert not DraftEdit.objects.exists()


def test_worker_side_errors_come_back_as_the_same_kind() -> None:
    with pytest.raises(Conflict, match="stale"):
        serving.unpack_reply({"error": {"code": "conflict", "message": "stale"}})
    assert serving.unpack_reply({"ok": {"version": 1}}) == {"version": 1}
    with pytest.raises(Unavailable):
        serving.unpack_reply("garbage")


def _worker_payload(masklet: Any, user: Any, points: list[Any], labels: list[int]) -> Any:
    """A click as the worker gets it, with the web side's current route for the session."""
    req = prompt_request(masklet, 0, points, labels)
    route = ModelSession.objects.filter(video=masklet.video, user=user).first()
    payload: dict[str, Any] = {"user_id": user.pk, **req.to_json()}
    if route is not None:
        payload["route"] = {"worker": route.worker, "model_key": route.model_key, "age": 0.0}
    return payload


def _serve_in_worker(payload: dict[str, Any]) -> Any:
    return serving.handle_prompt(payload, worker=INPROC_WORKER, queue=f"{INPROC_WORKER}.dq2")


def test_the_worker_reads_role_and_lease_once_under_the_lock(project: Any, annotator: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    click(masklet, 0, [[20, 30]], [1])
    payload = _worker_payload(masklet, annotator, [[20, 30], [50, 50]], [1, 0])
    with CaptureQueriesContext(connection) as queries:
        answer = _serve_in_worker(payload)
    assert "ok" in answer, answer
    sql = [q["sql"] for q in queries.captured_queries]
    assert sum('FROM "engine_membership"' in q for q in sql) == 1
    assert sum('FROM "engine_assignment"' in q for q in sql) == 1
    assert not any(q.startswith('UPDATE "engine_assignment"') for q in sql)  # extended < 1 min ago
    assert not any('FROM "engine_draftedit"' in q and "MAX(" not in q for q in sql)
    assert not any("engine_modelsession" in q for q in sql)  # the route is current


def test_a_click_that_reaches_the_worker_without_the_lease_changes_nothing(
    project: Any, annotator: Any, manager: Any
) -> None:
    # given: a click for a user who does not hold the video (the web side refuses it; one
    # that got past that check is refused by the save, under the lock)
    clip_video(project)
    _, (masklet,) = leased_objects(annotator, project)
    click(masklet, 0, [[20, 30]], [1])
    # when
    answer = _serve_in_worker(_worker_payload(masklet, manager, [[20, 30], [50, 50]], [1, 0]))
    # then
    assert answer["error"]["code"] == Conflict.code
    assert "do not hold" in answer["error"]["message"]
    assert DraftEdit.objects.count() == 1
    assert InteractionEvent.objects.filter(kind="click").count() == 1
    assert click(masklet, 0, [[20, 30], [50, 50]], [1, 0])["version"] == 2
