"""Ingest: upload → validate → decode at the annotation fps → frames in storage."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from engine.models import Job, Video
from engine.videos import ingest, storage
from engine.videos.ffmpeg import VideoLimits, probe_video
from tests.conftest import make_clip


def _upload(project, path: Path, name: str | None = None):
    with path.open("rb") as fh:
        return ingest.do_upload_video(
            project, project.created_by, name or path.name, fh, path.stat().st_size
        )


def _ingest(project, path: Path, name: str | None = None) -> Video:
    video = _upload(project, path, name)
    assert video.status == Video.Status.UPLOADED, video.error
    job = Job.objects.get(video=video, kind=Job.Kind.INGEST)
    ingest.run_ingest_job(job.pk)
    video.refresh_from_db()
    return video


def _stored_frames(video: Video) -> list[str]:
    return sorted(storage.iter_keys(video.frames_prefix))


def test_pattern_clip_becomes_ready_with_frames_at_annotation_fps(project, small_clip):
    # when
    video = _ingest(project, small_clip)
    # then: 2 s at 6 fps
    assert video.status == Video.Status.READY
    assert (video.width, video.height, video.codec) == (320, 240, "h264")
    assert video.source_fps == pytest.approx(24.0)
    assert video.duration == pytest.approx(2.0, abs=0.05)
    assert video.frame_count == 12
    frames = _stored_frames(video)
    assert frames == [video.frame_key(i) for i in range(12)]
    with default_storage.open(frames[0]) as fh, Image.open(fh) as img:
        assert img.size == (320, 240)
    assert default_storage.exists(video.thumbnail_key)
    job = Job.objects.get(video=video)
    assert (job.status, job.progress, job.attempt) == (Job.Status.SUCCEEDED, 1.0, 1)


@pytest.mark.parametrize("clip", ["cup_clip", "box_clip"])
def test_real_clip_frame_count_matches_ffprobe_duration_times_fps(project, clip, request):
    path = request.getfixturevalue(clip)
    probed = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=duration",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    duration = float(probed.stdout.strip())
    video = _ingest(project, path)
    assert video.status == Video.Status.READY, video.error
    assert video.frame_count == round(duration * 6.0)
    assert len(_stored_frames(video)) == video.frame_count
    assert (video.width, video.height) == (640, 480)


def test_project_annotation_fps_is_used(project, small_clip):
    project.annotation_fps = 3.0
    project.save()
    video = _ingest(project, small_clip)
    assert video.frame_count == 6


def test_rerun_after_worker_death_overwrites_instead_of_duplicating(project, small_clip, settings):
    # given a job whose first worker died mid-run (running, stale heartbeat) after writing a
    # stray frame beyond the real count
    video = _upload(project, small_clip)
    job = Job.objects.get(video=video)
    from datetime import timedelta

    from django.utils import timezone

    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING,
        attempt=1,
        heartbeat_at=timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS + 5),
    )
    storage.put_file(video.frame_key(40), __import__("io").BytesIO(b"stale"))
    # when the broker redelivers the message
    ingest.run_ingest_job(job.pk)
    # then the job completes as attempt 2 with exactly the right frames
    job.refresh_from_db()
    video.refresh_from_db()
    assert (job.status, job.attempt) == (Job.Status.SUCCEEDED, 2)
    assert _stored_frames(video) == [video.frame_key(i) for i in range(12)]


def test_running_job_with_fresh_heartbeat_is_not_claimed_twice(project, small_clip):
    video = _upload(project, small_clip)
    job = Job.objects.get(video=video)
    from django.utils import timezone

    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, heartbeat_at=timezone.now())
    ingest.run_ingest_job(job.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.UPLOADED
    assert _stored_frames(video) == []


# --- bad input -------------------------------------------------------------------------------


def _assert_refused(video: Video, message: str) -> None:
    assert video.status == Video.Status.FAILED
    assert message in video.error
    assert not Job.objects.filter(video=video).exists()
    assert _stored_frames(video) == []
    assert list(storage.iter_keys(f"videos/{video.pk}/source/")) == []


def test_not_a_video(project, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are my notes, not a video\n" * 50)
    _assert_refused(_upload(project, path), "Not a readable video file")


def test_truncated_video(project, tmp_path):
    full = make_clip(
        tmp_path / "full.mp4", seconds=10, size="640x480", extra=("-movflags", "+faststart")
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _assert_refused(_upload(project, cut), "truncated or corrupt")


def test_truncated_without_index(project, tmp_path):
    full = make_clip(tmp_path / "full.mp4", seconds=10, size="640x480")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _assert_refused(_upload(project, cut), "Not a readable video file")


def test_zero_frames(project, tmp_path):
    path = make_clip(tmp_path / "zero.mp4", seconds=1, extra=("-frames:v", "0"))
    _assert_refused(_upload(project, path), "no video stream")


def test_unsupported_codec(project, tmp_path):
    path = make_clip(tmp_path / "lossless.mkv", seconds=1, codec="ffv1")
    _assert_refused(_upload(project, path), "Unsupported video codec 'ffv1'")


def test_resolution_over_limit(project, small_clip, settings):
    settings.MAX_VIDEO_WIDTH, settings.MAX_VIDEO_HEIGHT = 160, 120
    _assert_refused(_upload(project, small_clip), "Resolution 320x240 is over the limit of 160x120")


def test_duration_over_limit(project, small_clip, settings):
    settings.MAX_VIDEO_SECONDS = 1.0
    _assert_refused(_upload(project, small_clip), "Duration 2.0 s is over the limit of 1 s")


def test_oversize_upload(project, small_clip, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    _assert_refused(_upload(project, small_clip), "the upload limit is 1,000 bytes")


@pytest.mark.parametrize("name", ["../../etc/clip.mp4", "sub/clip.mp4", "C:\\clips\\a.mp4", ".."])
def test_file_name_with_path_parts(project, small_clip, name):
    _assert_refused(_upload(project, small_clip, name=name), "path parts")


def test_decode_failure_in_worker_leaves_no_frames(project, small_clip, tmp_path):
    # given an accepted upload whose stored source is damaged before the worker decodes it
    video = _upload(project, small_clip)
    storage.put_file(video.source_key, __import__("io").BytesIO(b"\x00" * 4096))
    # when
    ingest.run_ingest_job(Job.objects.get(video=video).pk)
    # then
    video.refresh_from_db()
    job = Job.objects.get(video=video)
    assert video.status == Video.Status.FAILED
    assert "Not a readable video file" in video.error
    assert job.status == Job.Status.FAILED
    assert job.error == video.error
    assert _stored_frames(video) == []
    assert not default_storage.exists(ingest.thumbnail_key(video.pk))


def test_probe_reads_real_clip_metadata(cup_clip):
    result = probe_video(cup_clip, VideoLimits(4000, 4000, 600))
    assert (result.codec, result.width, result.height) == ("h264", 640, 480)
    assert result.fps == pytest.approx(26.777, abs=0.01)
