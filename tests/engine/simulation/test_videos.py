"""Procedural videos stored as project videos; ground truth regenerated from metadata."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from engine.errors import InvalidInput
from engine.models import Video
from engine.simulation.procedural import ProceduralSpec, make_video
from engine.simulation.videos import add_procedural_video, ground_truth, is_procedural
from engine.videos import storage
from model.frames import CallableFrameSource

SPEC = ProceduralSpec(num_frames=8, height=96, width=128, num_objects=2)


@pytest.mark.django_db
def test_stored_like_an_ingested_video(project: Any, manager: Any) -> None:
    clip = make_video(11, SPEC)
    video = add_procedural_video(project, clip, name="procedural 11", uploaded_by=manager)
    assert video.status == Video.Status.READY
    assert (video.frame_count, video.width, video.height) == (8, 128, 96)
    assert video.uploaded_by == manager
    assert video.progress == 1.0
    assert video.duration == pytest.approx(8 / project.annotation_fps)
    assert video.metadata["procedural"]["seed"] == 11
    assert video.metadata["procedural"]["spec"]["num_objects"] == 2
    assert sorted(storage.iter_keys(video.frames_prefix)) == [video.frame_key(i) for i in range(8)]
    with Image.open(io.BytesIO(storage.read_bytes(video.thumbnail_key))) as thumb:
        assert thumb.format == "JPEG"


@pytest.mark.django_db
def test_frames_read_back_through_storage(project: Any) -> None:
    clip = make_video(12, SPEC)
    video = add_procedural_video(project, clip, name="procedural 12")
    assert video.width is not None
    assert video.height is not None
    source = CallableFrameSource(
        video.frame_count,
        video.width,
        video.height,
        lambda i: storage.read_bytes(video.frame_key(i)),
    )
    for index in (0, 7):
        frame = np.asarray(source.read(index), dtype=np.int16)
        assert frame.shape == clip.frames[index].shape
        # JPEG is lossy, as ingested frames are: close, not equal
        assert np.abs(frame - clip.frames[index]).mean() < 4.0


@pytest.mark.django_db
def test_ground_truth_is_regenerated_exactly(project: Any) -> None:
    clip = make_video(13, SPEC)
    video = add_procedural_video(project, clip, name="procedural 13")
    video = Video.objects.get(pk=video.pk)  # only the database row
    assert is_procedural(video)
    again = ground_truth(video)
    assert again.seed == 13
    assert again.spec == SPEC
    assert again.labels == clip.labels
    assert again.frames.tobytes() == clip.frames.tobytes()
    assert again.masks.tobytes() == clip.masks.tobytes()
    again.masks[:] = False  # the caller's own copy
    assert ground_truth(video).masks.tobytes() == clip.masks.tobytes()


@pytest.mark.django_db
def test_ground_truth_of_other_videos_is_refused(project: Any) -> None:
    plain = Video.objects.create(project=project, name="kitchen.mp4")
    assert not is_procedural(plain)
    with pytest.raises(InvalidInput, match="not a procedural video"):
        ground_truth(plain)
    plain.metadata = {"procedural": {"seed": 1, "spec": {"num_frames": "many"}}}
    with pytest.raises(InvalidInput, match="malformed"):
        ground_truth(plain)


@pytest.mark.django_db
def test_a_storage_failure_leaves_nothing(project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    real_put = storage.put_file

    def failing_put(key: str, fileobj: Any) -> str:
        if len(written) == 3:
            raise OSError("disk full")
        written.append(key)
        return real_put(key, fileobj)

    monkeypatch.setattr(storage, "put_file", failing_put)
    with pytest.raises(OSError, match="disk full"):
        add_procedural_video(project, make_video(14, SPEC), name="procedural 14")
    assert not Video.objects.filter(name="procedural 14").exists()
    assert len(written) == 3
    assert not any(default_storage.exists(key) for key in written)


@pytest.mark.django_db
def test_an_empty_name_is_refused(project: Any) -> None:
    with pytest.raises(InvalidInput):
        add_procedural_video(project, make_video(15, SPEC), name="  ")
