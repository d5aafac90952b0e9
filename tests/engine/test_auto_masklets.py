"""The auto-masklet job end to end: a tiny real SAM 2 (random weights) over a small ingested clip.

Random weights judge every object absent in video tracking (the object-score head is negative),
which would make every propagated frame empty. As tests/model do, the fixture sets that head's
output bias to +30 so objects are present and the mask path (logits, stability, cleanup) is
exercised for real. Thresholds are permissive because a random model's IoU predictions and
stability scores are low; nothing in the pipeline is stubbed.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from django.utils import timezone

from engine.auto_masklets import generate
from engine.auto_masklets.generate import (
    AutoMaskletConfig,
    InvalidAutoMaskConfig,
    VideoNotReady,
    config_from_overrides,
    do_start_auto_masklets,
    masklets_of_job,
    run_auto_masklets_job,
)
from engine.inference import registry
from engine.inference.registry import ModelNotConfigured
from engine.jobs.lifecycle import do_request_cancel
from engine.masklets.revisions import revision_frames
from engine.masks.rle import decode_rle
from engine.models import Job, Masklet, ModelVersion, Video
from engine.videos import ingest
from model.build import build_sam2
from model.checkpoint import save_checkpoint

pytestmark = pytest.mark.django_db

N_FRAMES = 6

#: Small grid and permissive thresholds: what a random tiny model can pass.
SMALL_GRID = {
    "points_per_side": 3,
    "points_per_batch": 4,
    "crop_n_layers": 0,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.0,
    # a random model's logits stay within about +-0.2: SAM's offset of 1.0 would score every
    # mask 0, so the stability score is measured with a smaller logit offset
    "stability_score_offset": 0.05,
    "nms_iou_thresh": 0.95,
    "min_region_area": 4,
    "min_mask_area": 4,
    "non_overlapping": False,
    "max_objects": 3,
}


def tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """A random "test_tiny" SAM 2 saved in the official format, objects forced present."""
    torch.manual_seed(seed)
    net = build_sam2("test_tiny")
    head: Any = net.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[2].bias.fill_(30.0)
    save_checkpoint(net, path)
    return path


@pytest.fixture
def promoted_model(tmp_path: Path) -> ModelVersion:
    version = ModelVersion.objects.create(
        name="tiny-r0", config="test_tiny", status=ModelVersion.Status.PROMOTED
    )
    registry.store_checkpoint_for_version(version, tiny_checkpoint(tmp_path / "tiny.pt"))
    return version


@pytest.fixture(autouse=True)
def _model_settings(settings: Any, tmp_path: Path) -> Any:
    settings.SAM2_CACHE_DIR = str(tmp_path / "model-cache")
    settings.SAM2_CHECKPOINT = ""
    settings.SAM2_DEVICE = "cpu"
    # one intra-op thread: on a shared 2-core machine, torch's thread pool spinning against
    # other processes makes a tiny model about 50x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def ready_video(project: Any, small_clip: Path) -> Video:
    """The 2 s test pattern clip (320x240) ingested at 3 fps: 6 frames in storage."""
    project.annotation_fps = 3.0
    project.save(update_fields=["annotation_fps"])
    with small_clip.open("rb") as fh:
        video = ingest.do_upload_video(
            project, project.created_by, small_clip.name, fh, small_clip.stat().st_size
        )
    ingest.run_ingest_job(Job.objects.get(video=video, kind=Job.Kind.INGEST).pk)
    video.refresh_from_db()
    assert video.status == Video.Status.READY
    assert video.frame_count == N_FRAMES
    return video


def _start(video: Video, **overrides: Any) -> Job:
    return do_start_auto_masklets(video, video.project.created_by, {**SMALL_GRID, **overrides})


def test_job_creates_submitted_auto_masklets_with_stability_on_every_frame(
    ready_video: Video, promoted_model: ModelVersion
) -> None:
    # given
    job = _start(ready_video)
    # when
    run_auto_masklets_job(job.pk)
    # then
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.progress == 1.0
    masklets = list(Masklet.objects.filter(video=ready_video).order_by("object_id"))
    assert 1 <= len(masklets) <= SMALL_GRID["max_objects"]
    assert job.result["masklet_ids"] == [m.pk for m in masklets]
    assert f"promoted model version {promoted_model.pk}" in job.result["model"]
    stabilities: list[float] = []
    for masklet in masklets:
        assert (masklet.kind, masklet.status) == (Masklet.Kind.AUTO, Masklet.Status.SUBMITTED)
        frames = revision_frames(masklet.current_revision)  # type: ignore[arg-type]
        assert sorted(frames) == list(range(N_FRAMES))
        present = [f for f in frames.values() if f.rle is not None]
        # frame 0 is the proposal itself; objects forced present keep a mask afterwards too
        assert frames[0].rle is not None
        assert len(present) >= 2
        for frame in frames.values():
            assert frame.source == "auto"
            if frame.rle is None:
                assert frame.stability is None
                continue
            mask = decode_rle(frame.rle)
            assert mask.shape == (240, 320)
            assert mask.any()
            assert not mask.all()
            assert frame.stability is not None
            assert 0.0 <= frame.stability <= 1.0
            stabilities.append(frame.stability)
    # scores come from the logits: they vary, not a constant placeholder
    assert len(set(stabilities)) > len(masklets)
    assert any(0.0 < s < 1.0 for s in stabilities)


def test_thresholds_filter_first_frame_proposals(tmp_path: Path) -> None:
    """Model-level (no database): raising a threshold keeps a strict subset passing it."""
    from model.frames import ArrayFrameSource

    net = build_sam2("test_tiny", tiny_checkpoint(tmp_path / "m.pt"))
    rng = np.random.default_rng(0)
    image = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((40, 40, 1))).astype(np.uint8)
    frames = ArrayFrameSource([image])
    calls: list[float] = []

    def proposals(**overrides: Any) -> list[Any]:
        config = config_from_overrides({**SMALL_GRID, "max_objects": 100, **overrides})
        return generate.first_frame_proposals(net, frames, config, lambda f, m: calls.append(f))

    loose = proposals()
    assert loose
    assert calls[-1] == 1.0
    median_stability = float(np.median([p.stability_score for p in loose]))
    stable = proposals(stability_score_thresh=median_stability)
    assert 0 < len(stable) < len(loose)
    assert all(p.stability_score >= median_stability for p in stable)
    median_iou = float(np.median([p.predicted_iou for p in loose]))
    confident = proposals(pred_iou_thresh=median_iou)
    assert 0 < len(confident) < len(loose)
    assert all(p.predicted_iou >= median_iou for p in confident)


def test_per_frame_cleanup_removes_specks_and_holes(
    ready_video: Video, promoted_model: ModelVersion
) -> None:
    from scipy import ndimage

    area = 50
    job = _start(ready_video, min_region_area=area, min_mask_area=area)
    run_auto_masklets_job(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    checked = 0
    for masklet in Masklet.objects.filter(video=ready_video):
        for frame in revision_frames(masklet.current_revision).values():  # type: ignore[arg-type]
            if frame.rle is None:
                continue
            mask = decode_rle(frame.rle)
            eight = np.ones((3, 3), bool)
            islands, n = ndimage.label(mask, structure=eight)
            sizes = np.bincount(islands.ravel())[1:]
            # the largest island is kept even when small; every other one is >= area
            assert n <= 1 or np.sort(sizes)[:-1].min() >= area
            holes, n_holes = ndimage.label(~mask, structure=eight)
            hole_sizes = np.bincount(holes.ravel())[1:]
            assert n_holes == 0 or hole_sizes.min() >= area
            checked += 1
    assert checked > 0


def test_rerun_of_the_same_job_replaces_its_masklets(
    ready_video: Video, promoted_model: ModelVersion
) -> None:
    # given: a finished job, and a manual masklet that must survive
    from engine.masklets.revisions import FrameMask, do_create_masklet

    manual = do_create_masklet(
        ready_video, author=None, frames={0: FrameMask(None, source="click")}
    )
    job = _start(ready_video)
    run_auto_masklets_job(job.pk)
    first_ids = set(masklets_of_job(ready_video, job.pk).values_list("pk", flat=True))
    assert first_ids
    # when: the worker died after saving but before marking the job done, and the broker
    # redelivers the message (the row is "running" with a stale heartbeat)
    stale = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, heartbeat_at=stale)
    run_auto_masklets_job(job.pk)
    # then
    job.refresh_from_db()
    assert (job.status, job.attempt) == (Job.Status.SUCCEEDED, 2)
    second = masklets_of_job(ready_video, job.pk)
    assert second.count() == len(first_ids)
    assert not first_ids & set(second.values_list("pk", flat=True))
    assert Masklet.objects.filter(video=ready_video).count() == len(first_ids) + 1
    assert Masklet.objects.filter(pk=manual.pk).exists()
    # and a second job adds its own masklets instead of replacing the first job's
    other = _start(ready_video)
    run_auto_masklets_job(other.pk)
    assert Masklet.objects.filter(video=ready_video).count() == 2 * len(first_ids) + 1


def test_cancel_stops_between_frames_and_writes_nothing(
    ready_video: Video, promoted_model: ModelVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a cancel request arrives while frame 3 is being propagated
    job = _start(ready_video)
    real_progress = generate._job_progress
    seen: list[str] = []

    def cancelling_progress(reporter: Any) -> Any:
        inner = real_progress(reporter)

        def progress(fraction: float, message: str) -> None:
            if message.startswith("frame 3/"):
                do_request_cancel(ready_video.project.created_by, Job.objects.get(pk=job.pk))
                seen.append(message)
            inner(fraction, message)

        return progress

    monkeypatch.setattr(generate, "_job_progress", cancelling_progress)
    # when
    run_auto_masklets_job(job.pk)
    # then
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert "cancelled" in job.error
    assert seen == [f"frame 3/{N_FRAMES}"]  # stopped at the first check after the request
    assert job.progress < 1.0
    assert not Masklet.objects.filter(video=ready_video).exists()


def test_video_not_ready_is_refused(project: Any, promoted_model: ModelVersion) -> None:
    video = Video.objects.create(project=project, name="pending.mp4")
    with pytest.raises(VideoNotReady, match="not ready"):
        do_start_auto_masklets(video, None, {})
    assert not Job.objects.filter(kind=Job.Kind.AUTO_MASKLETS).exists()


def test_no_model_configured_names_the_settings(ready_video: Video) -> None:
    with pytest.raises(ModelNotConfigured, match="SAM2_CHECKPOINT"):
        do_start_auto_masklets(ready_video, None, {})


def test_job_fails_cleanly_when_the_model_disappears(
    ready_video: Video, promoted_model: ModelVersion
) -> None:
    job = _start(ready_video)
    ModelVersion.objects.filter(pk=promoted_model.pk).update(status=ModelVersion.Status.RETIRED)
    run_auto_masklets_job(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "SAM2_CHECKPOINT" in job.error


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"points_per_sid": 4}, "unknown setting"),
        ({"points_per_side": 0}, "points_per_side"),
        ({"points_per_side": "32"}, "must be an integer"),
        ({"points_per_side": 1000}, "at most 128"),
        ({"pred_iou_thresh": 1.5}, "pred_iou_thresh"),
        ({"pred_iou_thresh": float("nan")}, "finite"),
        ({"non_overlapping": 1}, "true or false"),
        ({"dtype": "float16"}, "dtype"),
        ({"max_objects": 0}, "max_objects"),
    ],
)
def test_bad_config_values_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidAutoMaskConfig, match=message):
        config_from_overrides(overrides)


def test_config_defaults_follow_the_paper_and_overrides_apply() -> None:
    default = config_from_overrides(None)
    assert default.proposals.points_per_side == 32
    assert default.proposals.crop_n_layers == 1
    assert default == AutoMaskletConfig()
    tuned = config_from_overrides({"points_per_side": 8, "pred_iou_thresh": 1, "dtype": "bfloat16"})
    assert tuned.proposals.points_per_side == 8
    assert tuned.proposals.pred_iou_thresh == 1.0
    assert tuned.dtype == "bfloat16"
    assert tuned.to_json()["points_per_side"] == 8


# --- through the REST API ----------------------------------------------------------------------


def _post(user: Any, video_id: int, body: Any) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client.post(f"/api/videos/{video_id}/auto-masklets/", body, format="json")


def test_manager_starts_a_job_through_the_api(
    ready_video: Video, promoted_model: ModelVersion, manager: Any
) -> None:
    response = _post(manager, ready_video.pk, {"config": {"points_per_side": 8}})
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.kind, job.status, job.video_id) == ("auto_masklets", "queued", ready_video.pk)
    assert job.args["config"] == {"points_per_side": 8}
    assert job.args["resolved"]["points_per_side"] == 8
    assert job.created_by == manager


def test_api_refuses_bad_requests_with_clear_errors(
    ready_video: Video, manager: Any, annotator: Any, outsider: Any, settings: Any, tmp_path: Path
) -> None:
    # no model anywhere: the server cannot run the job
    response = _post(manager, ready_video.pk, {})
    assert response.status_code == 503
    assert "SAM2_CHECKPOINT" in response.json()["detail"]
    settings.SAM2_CHECKPOINT = str(tiny_checkpoint(tmp_path / "t.pt"))
    settings.SAM2_CONFIG = "test_tiny"
    # wrong person
    assert _post(annotator, ready_video.pk, {}).status_code == 403
    assert _post(outsider, ready_video.pk, {}).status_code == 404
    # bad bodies and values
    assert _post(manager, ready_video.pk, {"config": {"points_per_side": -1}}).status_code == 400
    assert _post(manager, ready_video.pk, {"config": [1, 2]}).status_code == 400
    bad = _post(manager, ready_video.pk, {"grid": 4})
    assert bad.status_code == 400
    assert "unknown field" in bad.json()["detail"]
    # a video still decoding
    Video.objects.filter(pk=ready_video.pk).update(status=Video.Status.DECODING)
    not_ready = _post(manager, ready_video.pk, {})
    assert not_ready.status_code == 409
    assert "not ready" in not_ready.json()["detail"]
    assert not Job.objects.filter(kind=Job.Kind.AUTO_MASKLETS).exists()
    # and the same request succeeds once the video is ready
    Video.objects.filter(pk=ready_video.pk).update(status=Video.Status.READY)
    assert _post(manager, ready_video.pk, {}).status_code == 202


def test_crop_layers_prompt_each_crop_and_map_masks_back(tmp_path: Path) -> None:
    from model.frames import ArrayFrameSource

    net = build_sam2("test_tiny", tiny_checkpoint(tmp_path / "m.pt"))
    rng = np.random.default_rng(1)
    image = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((40, 40, 1))).astype(np.uint8)
    calls: list[float] = []
    config = config_from_overrides(
        {
            **SMALL_GRID,
            "crop_n_layers": 1,
            "crop_n_points_downscale_factor": 1,
            "max_objects": 100,
            "nms_iou_thresh": 1.0,
            # random masks run to the crop edges; keep them to check how crops map back
            # (the edge filter itself is tested in test_automask)
            "crop_edge_tolerance_px": -1.0,
        }
    )
    found = generate.first_frame_proposals(
        net, ArrayFrameSource([image]), config, lambda f, m: calls.append(f)
    )
    # 3 x 3 points on the image, then 3 x 3 on each of the 4 crops: progress ends exactly at 1
    assert generate.count_prompts((240, 320), config.proposals) == 9 + 4 * 9
    assert calls[-1] == 1.0
    assert len(calls) == 5 * 3  # 5 crops (the image is one), 3 batches of <= 4 points each
    crops = {p.crop_box for p in found}
    assert any(c.layer == 1 for c in crops)
    for p in found:
        assert p.mask.shape == (240, 320)
        ys, xs = np.nonzero(p.mask)
        c = p.crop_box
        assert c.x0 <= xs.min() <= xs.max() < c.x1
        assert c.y0 <= ys.min() <= ys.max() < c.y1
