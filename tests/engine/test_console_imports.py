"""Import pitfalls: a video imported without frames stays out of the queues until its file is
attached; a zip of only ``Annotations/`` imports into an existing video; the command's default
status is the page's (submitted for review); ground-truth imports are marked."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from engine.annotation.leases import videos_to_annotate
from engine.datasets.formats.davis import encode_index_png
from engine.datasets.importing import import_path
from engine.errors import Conflict, InvalidInput
from engine.models import Job, Masklet, Video
from engine.review.queue import review_queue
from engine.videos import attach, ingest

pytestmark = pytest.mark.django_db

HW = (240, 320)


def _davis_annotations(root: Path, name: str, frames: list[int]) -> Path:
    """``Annotations/<name>/`` only (no JPEGs): one object on ``frames`` of a 320x240 video."""
    folder = root / "Annotations" / name
    folder.mkdir(parents=True)
    for t in frames:
        index = np.zeros(HW, dtype=np.uint8)
        index[40:80, 40 + t : 90 + t] = 1
        (folder / f"{t:05d}.png").write_bytes(encode_index_png(index))
    return root


def _attach(video: Video, clip: Path, user) -> Job:
    with clip.open("rb") as fh:
        return attach.do_attach_video_file(video, user, clip.name, fh, clip.stat().st_size)


def test_frameless_import_is_kept_out_of_the_queues_until_its_file_is_attached(
    project, manager, reviewer, annotator, tmp_path, small_clip, django_capture_on_commit_callbacks
):
    # given annotations of 'pattern' without its video, imported for review
    import_path(project, _davis_annotations(tmp_path, "pattern", [0, 1, 2]), author=manager)
    video = Video.objects.get(project=project, name="pattern")
    masklet = Masklet.objects.get(video=video)
    # then the video is not "ready" and nobody is given it or its masklet
    assert video.status == Video.Status.NO_FRAMES
    assert masklet.status == Masklet.Status.DRAFT
    assert video.metadata["held_masklets"] == {str(masklet.pk): "submitted"}
    assert not review_queue(reviewer, project).exists()
    assert not videos_to_annotate(annotator, project).exists()
    # when its video file is attached and decoded (what the ingest worker does)
    with django_capture_on_commit_callbacks(execute=False):
        job = _attach(video, small_clip, manager)
    ingest.run_ingest_job(job.pk)
    # then the video is ready with real frames and the masklet waits for review
    video.refresh_from_db()
    assert (video.status, video.frame_count) == (Video.Status.READY, 12)
    assert video.metadata["has_frames"] is True
    assert "held_masklets" not in video.metadata
    assert list(review_queue(reviewer, project)) == [masklet]
    assert Masklet.objects.get(pk=masklet.pk).status == Masklet.Status.SUBMITTED


def test_a_file_too_short_for_the_masks_leaves_the_video_waiting(
    project, manager, reviewer, tmp_path, small_clip, django_capture_on_commit_callbacks
):
    import_path(project, _davis_annotations(tmp_path, "pattern", [0, 30]), author=manager)
    video = Video.objects.get(project=project, name="pattern")
    with django_capture_on_commit_callbacks(execute=False):
        job = _attach(video, small_clip, manager)
    ingest.run_ingest_job(job.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.NO_FRAMES
    assert "reach frame 30" in video.error
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED
    assert not review_queue(reviewer, project).exists()


def test_attach_refuses_a_video_with_frames_and_a_file_of_another_size(
    project, manager, tmp_path, small_clip, clips_dir
):
    from tests.conftest import make_clip

    ready = Video.objects.create(project=project, name="r.mp4", status=Video.Status.READY)
    with pytest.raises(Conflict):
        _attach(ready, small_clip, manager)
    import_path(project, _davis_annotations(tmp_path, "pattern", [0]), author=manager)
    video = Video.objects.get(project=project, name="pattern")
    other = make_clip(clips_dir / "wide.mp4", seconds=0.5, size="160x120")
    with pytest.raises(InvalidInput, match="160x120"):
        _attach(video, other, manager)
    video.refresh_from_db()
    assert (video.status, video.source_key) == (Video.Status.NO_FRAMES, "")
    assert not Job.objects.filter(video=video).exists()


def test_zip_of_only_annotations_imports_into_the_existing_video(project, manager, tmp_path):
    existing = Video.objects.create(
        project=project,
        name="pattern.mp4",
        status=Video.Status.READY,
        width=320,
        height=240,
        frame_count=12,
    )
    folder = _davis_annotations(tmp_path / "src", "pattern", [0, 1])
    archive = tmp_path / "annotations.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for png in sorted(folder.rglob("*.png")):
            zf.write(png, png.relative_to(folder).as_posix())
    assert zipfile.ZipFile(archive).namelist()[0].startswith("Annotations/pattern/")
    report = import_path(project, archive, author=manager)
    assert report.masklets == 1
    assert [v.video_id for v in report.videos] == [existing.pk]
    assert Masklet.objects.get(video=existing).status == Masklet.Status.SUBMITTED


def test_command_default_status_is_submitted_and_verified_marks_ground_truth(project, tmp_path):
    Video.objects.create(
        project=project, name="a.mp4", status="ready", width=320, height=240, frame_count=12
    )
    Video.objects.create(
        project=project, name="b.mp4", status="ready", width=320, height=240, frame_count=12
    )
    call_command(
        "import_masklets",
        project.name,
        str(_davis_annotations(tmp_path / "1", "a", [0])),
        stdout=io.StringIO(),
    )
    call_command(
        "import_masklets",
        project.name,
        str(_davis_annotations(tmp_path / "2", "b", [0])),
        "--status",
        "verified",
        stdout=io.StringIO(),
    )
    plain = Masklet.objects.get(video__name="a.mp4")
    truth = Masklet.objects.get(video__name="b.mp4")
    assert plain.status == Masklet.Status.SUBMITTED
    assert truth.status == Masklet.Status.VERIFIED
    assert truth.current_revision is not None
    assert plain.current_revision is not None
    assert truth.current_revision.note.startswith("imported as ground truth")
    assert not plain.current_revision.note.startswith("imported as ground truth")
    entry = truth.video.metadata["imported_masklets"][str(truth.object_id)]
    assert entry["ground_truth"] is True
