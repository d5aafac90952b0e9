"""Corrections that stick: a correction of one object leaves the others as they were, and a
correction in the middle of a propagated span is re-propagated both ways from it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from model.frames import ArrayFrameSource
from model.video_predictor import SessionOptions, VideoSession
from tests.engine.annotation._serving import serving_settings  # noqa: F401  (fixture)

W, H, N = 64, 48, 7
MID = 3


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(N):
        img = rng.integers(0, 40, (H, W, 3)).astype(np.uint8)
        img[10:30, 5 + 2 * i : 25 + 2 * i] = (220, 40, 40)
        img[30:45, 40 - i : 60 - i] = (40, 200, 60)
        out.append(img)
    return out


def _session(model: Any, **options: Any) -> VideoSession:
    opts = SessionOptions(fill_hole_area=0, keep_unchanged_objects=True, **options)
    return VideoSession(model, ArrayFrameSource(_frames()), opts)


def _track_two(session: VideoSession) -> dict[int, torch.Tensor]:
    """Object 1 clicked, object 2 boxed on frame 0; forward propagation. -> frame: logits."""
    session.add_points(0, 1, [[15, 20]], [1])
    session.add_points(0, 2, box=[38, 28, 62, 46])
    return {r.frame_idx: r.logits.clone() for r in session.propagate()}


@pytest.fixture
def present_model(make_tiny_model: Any) -> Any:
    """A tiny random model whose object-score head says "present" (random heads say absent,
    which would make every tracked mask empty and every comparison trivial)."""
    model = make_tiny_model(seed=3)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[2].bias.fill_(30.0)
    return model


def test_correcting_one_object_leaves_every_other_object_unchanged(present_model: Any) -> None:
    session = _session(present_model, corrections_as_cond=True)
    before = _track_two(session)
    corrected = session.add_points(MID, 1, [[30, 20], [12, 40]], [1, 0])
    torch.testing.assert_close(corrected.logits[1], before[MID][1], rtol=0, atol=0)
    after = {r.frame_idx: r.logits for r in session.propagate_both_ways(MID)}
    assert sorted(after) == list(range(N))
    for t in range(N):
        # object 2: bit for bit what it was
        assert torch.equal(after[t][1], before[t][1]), f"object 2 changed on frame {t}"
    changed = [t for t in range(1, N) if not torch.equal(after[t][0], before[t][0])]
    assert any(t < MID for t in changed)
    assert any(t > MID for t in changed)


def test_official_behaviour_retracks_untouched_objects(present_model: Any) -> None:
    """Without keep_unchanged_objects (the default, as Meta's predictor), every object is
    re-tracked by a propagation, so each object's reused outputs are a choice of the option."""
    calls: list[int] = []
    session = VideoSession(
        present_model, ArrayFrameSource(_frames()), SessionOptions(fill_hole_area=0)
    )
    _track_two(session)
    original = session._track

    def counting(frame_idx: int, objs: list[Any], **kwargs: Any) -> Any:
        calls.extend(o.obj_id for o in objs)
        return original(frame_idx, objs, **kwargs)

    session._track = counting  # type: ignore[method-assign]
    session.add_points(MID, 1, [[30, 20]], [1])
    calls.clear()
    list(session.propagate(MID))
    assert calls.count(2) == N - MID  # re-tracked on every frame from the correction on
    sticky = _session(present_model)
    _track_two(sticky)
    original_sticky = sticky._track

    def counting_sticky(frame_idx: int, objs: list[Any], **kwargs: Any) -> Any:
        calls.extend(o.obj_id for o in objs)
        return original_sticky(frame_idx, objs, **kwargs)

    sticky._track = counting_sticky  # type: ignore[method-assign]
    sticky.add_points(MID, 1, [[30, 20]], [1])
    calls.clear()
    list(sticky.propagate(MID))
    assert 2 not in calls
    assert calls.count(1) == N - MID


def test_mid_video_correction_becomes_a_conditioning_frame_and_repropagates_both_ways(
    present_model: Any,
) -> None:
    session = _session(present_model, corrections_as_cond=True)
    before = _track_two(session)
    corrected = session.add_points(MID, 1, [[30, 20], [12, 40]], [1, 0])
    after = {r.frame_idx: r.logits for r in session.propagate_both_ways(MID)}
    assert session.memory_stats()["objects"][1]["cond_frames"] == 2
    assert session.memory_stats()["objects"][2]["cond_frames"] == 1
    # the corrected frame keeps the correction itself in both passes
    torch.testing.assert_close(after[MID][0], corrected.logits[0])
    # frames on both sides follow it: each differs from the first tracking
    for t in (MID - 1, MID + 1):
        assert not torch.equal(after[t][0], before[t][0])
    # and they are what tracking with that conditioning frame gives: re-running the backward
    # pass over the same memory reproduces them
    again = {r.frame_idx: r.logits for r in session.propagate(MID - 1, reverse=True)}
    for t in range(MID):
        torch.testing.assert_close(again[t][0], after[t][0], rtol=0, atol=0)


def test_correction_without_cond_option_stays_a_plain_correction(present_model: Any) -> None:
    session = _session(present_model)
    _track_two(session)
    session.add_points(MID, 1, [[30, 20]], [1])
    list(session.propagate_both_ways(MID))
    assert session.memory_stats()["objects"][1]["cond_frames"] == 1


def test_add_masks_seeds_many_objects_with_one_result(present_model: Any) -> None:
    masks = {}
    for k in range(4):
        m = np.zeros((H, W), bool)
        m[5 + 8 * k : 12 + 8 * k, 10:50] = True
        masks[k] = m
    one_by_one = VideoSession(present_model, ArrayFrameSource(_frames()))
    for k, m in masks.items():
        last = one_by_one.add_mask(0, k, m)
    together = VideoSession(present_model, ArrayFrameSource(_frames()))
    result = together.add_masks(0, masks)
    assert result.obj_ids == last.obj_ids == [0, 1, 2, 3]
    torch.testing.assert_close(result.logits, last.logits)
    a = [r.logits for r in one_by_one.propagate()]
    b = [r.logits for r in together.propagate()]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


@pytest.mark.django_db
@pytest.mark.usefixtures("serving_settings")
def test_served_correction_of_one_object_leaves_the_others_drafts_unchanged(
    project: Any, annotator: Any, tmp_path: Any
) -> None:
    """Through the annotation engine: clicks are served on the annotator's live session, and a
    correction saves only the clicked object's draft frame."""
    from engine.annotation import drafts, serving
    from engine.annotation.serving import PromptRequest
    from tests.engine.annotation._serving import (
        clip_video,
        leased_objects,
        promote_tiny_model,
        version_of,
    )

    promote_tiny_model(tmp_path)
    clip_video(project)
    _, (first, second) = leased_objects(annotator, project, count=2)

    def click(masklet: Any, frame: int, points: list[list[float]], labels: list[int]) -> Any:
        request = PromptRequest(
            masklet_id=masklet.pk,
            base_version=version_of(masklet),
            frame_index=frame,
            tool="video_click",
            points=tuple((float(x), float(y)) for x, y in points),
            labels=tuple(labels),
            box=None,
        )
        return serving.do_prompt(annotator, masklet, request)

    click(first, 1, [[20, 30]], [1])
    click(second, 1, [[75, 45]], [1])
    click(second, 3, [[75, 45]], [1])
    before = drafts.draft_state(second)
    version = version_of(second)
    click(first, 1, [[20, 30], [60, 10]], [1, 0])  # a correction of the first object
    click(first, 3, [[40, 30]], [1])
    after = drafts.draft_state(second)
    assert version_of(second) == version
    assert {t: f.rle for t, f in after.frames.items()} == {
        t: f.rle for t, f in before.frames.items()
    }
    assert drafts.draft_state(first).frames[3].rle is not None


def test_add_masks_shows_each_new_mask_for_new_objects_and_corrections(
    present_model: Any,
) -> None:
    session = _session(present_model)
    session.add_points(0, 1, [[15, 20]], [1])
    list(session.propagate())
    m1 = np.zeros((H, W), bool)
    m1[5:20, 5:30] = True
    m2 = np.zeros((H, W), bool)
    m2[25:45, 30:60] = True
    result = session.add_masks(2, {1: m1, 2: m2})  # a correction of 1, a new object 2
    assert result.obj_ids == [1, 2]
    for row, mask in enumerate((m1, m2)):
        pred = (result.logits[row, 0] > 0).numpy()
        assert (pred & mask).sum() / (pred | mask).sum() > 0.9


def _clicks_on_a_tracked_frame(model: Any) -> tuple[list[torch.Tensor], int]:
    """Track, then three clicks one after another on frame MID: (logits after each, memory
    attention calls during the clicks)."""
    session = _session(model)
    _track_two(session)
    calls = []
    hook = model.memory_attention.register_forward_hook(lambda *_: calls.append(1))
    try:
        points = [[30, 20], [12, 40], [20, 22]]
        logits = [
            session.add_points(MID, 1, points[: k + 1], [1, 0, 1][: k + 1]).logits.clone()
            for k in range(3)
        ]
    finally:
        hook.remove()
        session.close()
    return logits, len(calls)


def test_further_clicks_on_a_tracked_frame_reuse_its_memory_attention(present_model: Any) -> None:
    memo = present_model.memory_memo
    with torch.no_grad():
        with_memo, calls = _clicks_on_a_tracked_frame(present_model)
        present_model.memory_memo = None
        without, calls_without = _clicks_on_a_tracked_frame(present_model)
    present_model.memory_memo = memo

    assert (calls, calls_without) == (1, 3)
    for a, b in zip(with_memo, without, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(with_memo[0], with_memo[1])  # the clicks did change the mask


def test_memo_never_returns_a_result_for_other_inputs() -> None:
    from model.memo import LastCallMemo

    memo = LastCallMemo()
    x, y = torch.ones(2, 3), torch.zeros(2, 3)
    memo.put((x, 1), y)
    assert memo.get((x.clone(), 1)) is y  # equal values: the same result
    assert memo.get((x, 2)) is None
    assert memo.get((x + 1e-6, 1)) is None
    assert memo.get((x.double(), 1)) is None
    assert memo.get((x[:1], 1)) is None
    memo.clear()
    assert memo.get((x, 1)) is None


def _first_correction(model: Any, prepare: bool) -> tuple[torch.Tensor, int, bool]:
    """Track, maybe prepare, then one click on frame MID: (logits, memory attention calls during
    the click, what prepare_correction returned)."""
    session = _session(model)
    _track_two(session)
    prepared = session.prepare_correction(MID, 1) if prepare else False
    calls = []
    hook = model.memory_attention.register_forward_hook(lambda *_: calls.append(1))
    try:
        logits = session.add_points(MID, 1, [[30, 20]], [1]).logits.clone()
    finally:
        hook.remove()
        session.close()
    return logits, len(calls), prepared


def test_a_prepared_correction_finds_its_memory_attention_done(present_model: Any) -> None:
    with torch.no_grad():
        warmed, calls, prepared = _first_correction(present_model, prepare=True)
        cold, calls_cold, _ = _first_correction(present_model, prepare=False)
    assert prepared
    assert (calls, calls_cold) == (0, 1)
    torch.testing.assert_close(warmed, cold, rtol=0, atol=0)


def test_nothing_is_prepared_where_a_correction_needs_no_memory(present_model: Any) -> None:
    session = _session(present_model)
    session.add_points(0, 1, [[15, 20]], [1])
    assert not session.prepare_correction(MID, 1)  # not tracked yet: a click conditions
    list(session.propagate())
    assert not session.prepare_correction(MID, 9)  # no such object
    assert session.prepare_correction(MID, 1)
    session.close()
    as_cond = _session(present_model, corrections_as_cond=True)
    _track_two(as_cond)
    assert not as_cond.prepare_correction(MID, 1)  # the correction becomes a conditioning frame
    as_cond.close()
    memo, present_model.memory_memo = present_model.memory_memo, None
    try:
        plain = _session(present_model)
        _track_two(plain)
        assert not plain.prepare_correction(MID, 1)  # no memo to keep the result in
        plain.close()
    finally:
        present_model.memory_memo = memo
