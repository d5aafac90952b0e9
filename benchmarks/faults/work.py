"""Work for the workers to be killed in: uploads, exports, propagations, automatic masklets and
retraining rounds, made through ``engine`` as the web layer makes them. Each ``new_*`` function
returns the ids of the jobs it queued (sent to the broker after commit)."""

from __future__ import annotations

import io
import itertools
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Frames of each propagation and automatic-masklet video (64 x 96 px; test_tiny works at 128).
CLIP_FRAMES = 16
H, W = 64, 96

#: Automatic masklets a random tiny model can produce (as tests/engine/test_auto_masklets.py).
AUTO_GRID: dict[str, Any] = {
    "points_per_side": 3,
    "points_per_batch": 4,
    "crop_n_layers": 0,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.0,
    "stability_score_offset": 0.05,
    "nms_iou_thresh": 0.95,
    "min_region_area": 4,
    "min_mask_area": 4,
    "non_overlapping": False,
    "max_objects": 3,
}

_names = itertools.count(1)


@dataclass
class Work:
    """The people and project of one scenario, and what its jobs are about."""

    project: Any
    manager: Any
    videos: list[int] = field(default_factory=list)
    masklets: dict[int, int] = field(default_factory=dict)  # propagate job -> masklet id
    base_versions: dict[int, int] = field(default_factory=dict)  # propagate job -> version


def new_project(name: str, **options: Any) -> Work:
    from engine.accounts.projects import do_create_project, do_create_user

    manager = do_create_user(f"{name}-manager", "pass-manager-1", "manager")
    return Work(do_create_project(name, manager, **options), manager)


def promote_tiny_model(folder: Path) -> Any:
    """A random ``test_tiny`` SAM 2 with its object-score head forced to "present" (so masks
    are not empty), registered and promoted."""
    import torch

    from engine.training import versions
    from model.build import build_sam2
    from model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = build_sam2("test_tiny")
    head: Any = net.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[2].bias.fill_(30.0)
    path = folder / "tiny.pt"
    save_checkpoint(net, path)
    version = versions.do_register_checkpoint(None, path, name="faults-tiny", config="test_tiny")
    return versions.do_promote(None, version)


def frame_image(index: int) -> np.ndarray:
    """uint8 (H, W, 3): a bright square moving right over a gradient, a dark disc fixed."""
    yy, xx = np.mgrid[0:H, 0:W]
    image = np.stack([xx * 2, yy * 3, (xx + yy)], axis=-1).astype(np.uint8)
    left = 4 + (3 * index) % (W - 28)
    image[20:40, left : left + 20] = (250, 240, 30)
    image[(yy - 45) ** 2 + (xx - 75) ** 2 < 100] = (20, 20, 160)
    return image


def clip_video(project: Any, frames: int = CLIP_FRAMES) -> Any:
    """A ready video whose JPEG frames are in storage (as ingest leaves them)."""
    from PIL import Image

    from engine.models import Video, frame_key
    from engine.videos import storage

    video = Video.objects.create(
        project=project,
        name=f"clip{next(_names)}.mp4",
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


def uploader(work: Work, clips: Path) -> Callable[[], list[int]]:
    """Upload a 4 to 7 s test pattern (24 fps, decoded at the project's fps) per call."""
    from django.db import transaction

    from engine.models import Job
    from engine.videos.ingest import do_upload_video

    clips.mkdir(parents=True, exist_ok=True)

    def upload() -> list[int]:
        n = len(work.videos)
        clip = clips / f"clip{n}.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc=duration={4 + n % 4}:size=320x240:rate=24", "-c:v", "libx264",
             "-pix_fmt", "yuv420p", str(clip)],
            check=True,
        )  # fmt: skip
        with transaction.atomic(), clip.open("rb") as f:
            video = do_upload_video(work.project, work.manager, clip.name, f, clip.stat().st_size)
        work.videos.append(video.pk)
        return list(Job.objects.filter(video=video, kind="ingest").values_list("pk", flat=True))

    return upload


def exporter(work: Work, fmt: str = "davis") -> Callable[[], list[int]]:
    from django.db import transaction

    from engine.datasets.export import do_start_export

    def export() -> list[int]:
        with transaction.atomic():
            return [do_start_export(work.project, user=work.manager, fmt=fmt).pk]

    return export


def propagator(work: Work) -> Callable[[], list[int]]:
    """Per call: a new clip and a new annotator who leases it, draws the object on frame 0
    (a brush mask: the project is in phase 2) and propagates it forward."""
    from engine.accounts.projects import do_create_user, do_set_membership
    from engine.annotation import drafts, leases, propagation
    from engine.annotation.edits import FrameEdit
    from engine.masks.rle import encode_rle

    def propagate() -> list[int]:
        video = clip_video(work.project)
        work.videos.append(video.pk)
        user = do_create_user(f"annotator{next(_names)}", "pass-annotator-1", "annotator")
        do_set_membership(work.project, user, "annotator")
        lease = leases.do_take_next_video(user, work.project)
        if lease is None or lease.video_id != video.pk:
            raise RuntimeError(f"the new annotator was not given the new clip: {lease}")
        masklet = drafts.do_create_object(user, lease, "square")
        mask = np.zeros((H, W), dtype=bool)
        mask[20:40, 4:24] = True
        version = drafts.do_record_edits(
            user, masklet, masklet.draft_version, [FrameEdit(0, "brush", encode_rle(mask))]
        )
        job = propagation.do_start_propagation(user, masklet, version, 0, "forward")
        work.masklets[job.pk] = masklet.pk
        work.base_versions[job.pk] = version
        return [job.pk]

    return propagate


def auto_masker(work: Work) -> Callable[[], list[int]]:
    """Per call: a new clip and an automatic-masklet job on it."""
    from engine.auto_masklets.generate import do_start_auto_masklets

    def auto() -> list[int]:
        video = clip_video(work.project)
        work.videos.append(video.pk)
        return [do_start_auto_masklets(video, work.manager, dict(AUTO_GRID)).pk]

    return auto


def verified_videos(work: Work, count: int, frames: int = 5, size: int = 128) -> None:
    """``count`` procedural videos (`frames` frames of `size` px, one object) with their exact
    masks as verified masklets: the data a round trains and evaluates on, or exports."""
    from PIL import Image

    from engine.accounts.projects import do_create_user, do_set_membership
    from engine.masklets.revisions import FrameMask, do_create_masklet
    from engine.masks.rle import encode_rle
    from engine.models import Video, frame_key
    from engine.review.submission import do_submit_masklet
    from engine.review.verdicts import do_review
    from engine.simulation.procedural import ProceduralSpec, make_videos
    from engine.videos import storage

    annotator = do_create_user(f"annotator{next(_names)}", "pass-annotator-1", "annotator")
    reviewer = do_create_user(f"reviewer{next(_names)}", "pass-reviewer-1", "reviewer")
    do_set_membership(work.project, annotator, "annotator")
    do_set_membership(work.project, reviewer, "reviewer")
    spec = ProceduralSpec(
        num_frames=frames, height=size, width=size, num_objects=1, reappear=False,
        occlusion=False, min_size=0.26, max_size=0.3,
    )  # fmt: skip
    for clip in make_videos(1, count, spec):
        n, height, width = clip.frames.shape[:3]
        video = Video.objects.create(
            project=work.project, name=f"procedural-{clip.seed}.mp4", status=Video.Status.READY,
            width=width, height=height, frame_count=n,
        )  # fmt: skip
        for t in range(n):
            buffer = io.BytesIO()
            Image.fromarray(clip.frames[t]).save(buffer, format="JPEG", quality=95)
            buffer.seek(0)
            storage.put_file(frame_key(video.pk, t), buffer)
        masks = {t: FrameMask(encode_rle(np.asarray(clip.masks[0, t])), "click") for t in range(n)}
        masklet = do_submit_masklet(
            do_create_masklet(video, author=annotator, frames=masks), annotator
        )
        assert masklet.current_revision is not None
        do_review(masklet.current_revision, reviewer, "satisfactory")
        work.videos.append(video.pk)


def rounder(work: Work, steps: int) -> Callable[[], list[int]]:
    """Per call: a retraining round of `steps` steps (one at a time per project)."""
    from engine.training import rounds

    def train() -> list[int]:
        return [rounds.do_start_round(work.manager, work.project, steps=steps).pk]

    return train
