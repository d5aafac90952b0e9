"""Builders shared by the model-serving tests: a tiny promoted model, a small clip written as
JPEG frames through the real storage, a leased video with objects, and an in-process
``TASK_CALLER`` so engine tests serve clicks without a worker."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.annotation import drafts, leases, serving
from engine.inference import registry
from engine.models import Assignment, Masklet, ModelVersion, Project, Video, frame_key
from engine.videos import storage

H, W, N_FRAMES = 64, 96, 6
CALLS: list[tuple[str, str]] = []
INPROC_WORKER = "inproc@test"


def call_in_process(
    name: str, args: list[Any], queue: str, timeout: float, pickup_timeout: float | None = None
) -> Any:
    """A ``TASK_CALLER`` that serves the call in this process (as the task would)."""
    CALLS.append((name, queue))
    assert name == serving.PROMPT_TASK, name
    return serving.handle_prompt(args[0], worker=INPROC_WORKER, queue=f"{INPROC_WORKER}.dq2")


def promote_tiny_model(tmp_path: Path) -> ModelVersion:
    from tests.engine.test_auto_masklets import tiny_checkpoint

    version = ModelVersion.objects.create(
        name="tiny-r0", config="test_tiny", status=ModelVersion.Status.PROMOTED
    )
    return registry.store_checkpoint_for_version(version, tiny_checkpoint(tmp_path / "tiny.pt"))


def frame_image(index: int) -> np.ndarray:
    """uint8 (H, W, 3): a bright square moving right over a gradient, a dark disc fixed."""
    yy, xx = np.mgrid[0:H, 0:W]
    image = np.stack([xx * 2, yy * 3, (xx + yy)], axis=-1).astype(np.uint8)
    top, left = 20, 10 + 8 * index
    image[top : top + 20, left : left + 20] = (250, 240, 30)
    image[(yy - 45) ** 2 + (xx - 75) ** 2 < 100] = (20, 20, 160)
    return image


def clip_video(project: Project, name: str = "clip.mp4", frames: int = N_FRAMES) -> Video:
    video = Video.objects.create(
        project=project,
        name=name,
        status=Video.Status.READY,
        width=W,
        height=H,
        frame_count=frames,
    )
    for index in range(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame_image(index)).save(buffer, format="JPEG", quality=95)
        buffer.seek(0)
        storage.put_file(frame_key(video.pk, index), buffer)
    return video


def leased_objects(user: Any, project: Project, count: int = 1) -> tuple[Assignment, list[Masklet]]:
    lease = leases.do_take_next_video(user, project)
    assert lease is not None
    return lease, [drafts.do_create_object(user, lease, f"obj{i}") for i in range(count)]


def version_of(masklet: Masklet) -> int:
    masklet.refresh_from_db()
    return masklet.draft_version


# --- fixtures (imported by the serving test modules) -------------------------------------------

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def serving_settings(settings: Any, tmp_path: Path) -> Any:
    """Tiny-model settings, the in-process caller, empty caches; one torch thread."""
    from engine.annotation.sessions import CACHE

    settings.SAM2_CACHE_DIR = str(tmp_path / "model-cache")
    settings.SAM2_CHECKPOINT = ""
    settings.SAM2_DEVICE = "cpu"
    settings.TASK_CALLER = f"{__name__}.call_in_process"
    settings.TASK_SENDER = f"{__name__}.record_send"
    settings.ANNOTATION_WARM_FRAMES = 0
    settings.ANNOTATION_STATE_DIR = str(tmp_path / "annotation-state")
    CALLS.clear()
    SENT.clear()
    CACHE.clear()
    registry.clear_model_cache()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield settings
    torch.set_num_threads(threads)
    CACHE.clear()
    registry.clear_model_cache()


SENT: list[tuple[str, list[Any], str]] = []


def record_send(name: str, args: list[Any], queue: str) -> None:
    SENT.append((name, args, queue))


@pytest.fixture
def tiny_model(serving_settings: Any, tmp_path: Path) -> ModelVersion:
    return promote_tiny_model(tmp_path)


def set_phase(project: Project, phase: int) -> Project:
    project.phase = phase
    project.save(update_fields=["phase"])
    return project
