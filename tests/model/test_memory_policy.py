"""Memory selection: the official choice by default, a "reliable" policy that fills memory slots
with confident frames only, and bounded memory that still keeps the chosen frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from model.frames import ArrayFrameSource
from model.memory_policy import MemoryPolicy, select_memory_frames
from model.video_predictor import SessionOptions, VideoSession

W, H = 64, 48


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = rng.integers(0, 40, (H, W, 3)).astype(np.uint8)
        img[10:30, 5 + 2 * i % 30 : 25 + 2 * i % 30] = (220, 40, 40)
        out.append(img)
    return out


@pytest.fixture
def present_model(make_tiny_model: Any) -> Any:
    model = make_tiny_model(seed=5)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[2].bias.fill_(30.0)
    return model


def _run(model: Any, n: int, policy: MemoryPolicy, **options: Any) -> list[torch.Tensor]:
    opts = SessionOptions(fill_hole_area=0, memory_policy=policy, **options)
    session = VideoSession(model, ArrayFrameSource(_frames(n)), opts)
    session.add_points(0, 1, [[15, 20]], [1])
    session.add_points(0, 2, box=[30, 5, 60, 40])
    return [r.logits for r in session.propagate()]


def test_default_is_the_official_policy_and_names_are_checked() -> None:
    assert SessionOptions().memory_policy == MemoryPolicy(name="all")
    assert not SessionOptions().memory_policy.selective
    assert SessionOptions(memory_policy="reliable").memory_policy.name == "reliable"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="memory policy"):
        MemoryPolicy(name="best")
    with pytest.raises(ValueError, match="min_iou"):
        MemoryPolicy(name="reliable", min_iou=1.5)


def test_reliability_rule_needs_presence_and_predicted_iou() -> None:
    policy = MemoryPolicy(name="reliable", min_iou=0.7, min_object_score=0.0)
    assert policy.is_reliable(0.9, 2.0)
    assert not policy.is_reliable(0.9, -0.5)  # judged absent (occluded)
    assert not policy.is_reliable(0.5, 2.0)  # a doubtful mask


def test_select_memory_frames_takes_the_nearest_reliable_ones() -> None:
    reliable = {t: t % 3 != 0 for t in range(20)}
    forward = select_memory_frames(12, False, 4, reliable, lambda t: True, max_distance=32)
    assert forward == [11, 10, 8, 7]
    backward = select_memory_frames(12, True, 2, reliable, lambda t: True, max_distance=32)
    assert backward == [13, 14]
    assert select_memory_frames(12, False, 4, reliable, lambda t: t != 11, 2) == [10]


def test_policy_accepting_every_frame_equals_the_official_memory(present_model: Any) -> None:
    everything = MemoryPolicy(name="reliable", min_iou=0.0, min_object_score=-1e9)
    official = _run(present_model, 9, MemoryPolicy())
    selective = _run(present_model, 9, everything)
    for a, b in zip(official, selective):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_unreliable_frames_are_kept_out_of_memory(present_model: Any) -> None:
    everything = SessionOptions(
        fill_hole_area=0,
        memory_policy=MemoryPolicy(name="reliable", min_iou=0.0, min_object_score=-1e9),
    )
    session = VideoSession(present_model, ArrayFrameSource(_frames(8)), everything)
    session.add_points(0, 1, [[15, 20]], [1])
    first = {r.frame_idx: r.logits for r in session.propagate(max_frame_num_to_track=3)}
    obj = session._objects[1]
    assert set(obj.reliable) == {1, 2, 3}
    # whatever the model said, pretend frame 3 was occluded and 1-2 confident
    obj.reliable.update({1: True, 2: True, 3: False})
    mem_frames, _ = session._memory_frames(4, False)
    assert session._spatial_sources(obj, 4, False, mem_frames) == {3: 2, 2: 1}
    later = {r.frame_idx: r.logits for r in session.propagate(4)}
    reference = VideoSession(present_model, ArrayFrameSource(_frames(8)), everything)
    reference.add_points(0, 1, [[15, 20]], [1])
    ref = {r.frame_idx: r.logits for r in reference.propagate()}
    for t in range(4):
        torch.testing.assert_close(first[t], ref[t], rtol=0, atol=0)
    assert not torch.equal(later[4], ref[4])  # frame 3's memory was left out


def test_chosen_frames_keep_their_memory_when_older_ones_are_dropped(present_model: Any) -> None:
    policy = MemoryPolicy(name="reliable", max_distance=40)
    opts = SessionOptions(fill_hole_area=0, memory_policy=policy, spill_evicted=False)
    session = VideoSession(present_model, ArrayFrameSource(_frames(20)), opts)
    session.add_points(0, 1, [[15, 20]], [1])
    obj = session._objects[1]
    original = policy.is_reliable
    count = 0

    def first_two_only(iou: float, score: float) -> bool:
        nonlocal count
        count += 1
        return count <= 2 and original(0.9, 1.0)

    object.__setattr__(policy, "is_reliable", first_two_only)
    list(session.propagate())
    assert obj.reliable[1]
    assert obj.reliable[2]
    assert not any(obj.reliable[t] for t in range(3, 20))
    # frames 1 and 2 are far outside the 6-frame window but still in RAM with their memory
    assert obj.memory.available(1, heavy=True)
    assert obj.memory.available(2, heavy=True)
    assert not obj.memory.available(8, heavy=True)


@pytest.mark.django_db
def test_project_setting_reaches_the_annotation_sessions(project: Any, tiny_model: Any) -> None:
    from types import SimpleNamespace

    from engine.annotation import sessions
    from engine.models import Video
    from webapp.forms import ProjectForm

    form = ProjectForm(instance=project)
    assert "memory_policy" in form.fields
    assert 'value="reliable"' in str(form["memory_policy"])
    video = Video.objects.create(
        project=project, name="clip", width=W, height=H, frame_count=3, status=Video.Status.READY
    )
    loaded: Any = SimpleNamespace(model=tiny_model)
    default = sessions._new_video_session(video, loaded)
    assert default.options.memory_policy == MemoryPolicy()
    project.memory_policy = "reliable"
    project.save(update_fields=["memory_policy"])
    video.refresh_from_db()
    chosen = sessions._new_video_session(video, loaded)
    assert chosen.options.memory_policy.name == "reliable"
    default.close()
    chosen.close()
