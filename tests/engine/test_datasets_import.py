"""Imports from hand-made DAVIS folders and zips: video matching, frame limits, unsafe zips."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.datasets.formats.davis import encode_index_png
from engine.datasets.import_readers import DatasetImportError
from engine.datasets.importing import check_import, find_video, import_path
from engine.masklets.revisions import revision_frames
from engine.masks.rle import decode_rle
from engine.models import Masklet, Video

pytestmark = pytest.mark.django_db


def _davis_folder(root: Path, name: str, frames: list[int], hw: tuple[int, int]) -> np.ndarray:
    """Two objects on ``frames``; object 2 leaves after the first frame. Returns frame 0's index."""
    folder = root / "Annotations" / name
    folder.mkdir(parents=True)
    first = None
    for t in frames:
        index = np.zeros(hw, dtype=np.uint8)
        index[1:4, 1 + t : 4 + t] = 1
        if t == frames[0]:
            index[5:7, 5:9] = 2
            first = index
        (folder / f"{t:05d}.png").write_bytes(encode_index_png(index))
    assert first is not None
    return first


def test_davis_folder_without_meta_becomes_a_frameless_video(project, tmp_path: Path) -> None:
    first = _davis_folder(tmp_path, "walk", [0, 1, 2, 3], (10, 12))
    report = import_path(project, tmp_path)
    assert report.masklets == 2
    video = Video.objects.get(project=project, name="walk")
    assert (video.width, video.height, video.frame_count) == (12, 10, 4)
    assert video.metadata["has_frames"] is False
    masklets = list(Masklet.objects.filter(video=video).order_by("object_id"))
    assert [m.kind for m in masklets] == ["manual", "manual"]
    assert masklets[0].current_revision is not None
    assert masklets[1].current_revision is not None
    one = revision_frames(masklets[0].current_revision)
    two = revision_frames(masklets[1].current_revision)
    assert np.array_equal(decode_rle(one[0].rle), first == 1)  # type: ignore[arg-type]
    assert np.array_equal(decode_rle(two[0].rle), first == 2)  # type: ignore[arg-type]
    assert not decode_rle(two[3].rle).any()  # type: ignore[arg-type]


def test_import_into_existing_video_respects_its_frames(project, tmp_path: Path) -> None:
    Video.objects.create(
        project=project, name="walk.mp4", width=12, height=10, frame_count=3, status="ready"
    )
    _davis_folder(tmp_path, "walk", [0, 1, 2, 3], (10, 12))
    with pytest.raises(DatasetImportError, match="reach frame 3.*has 3 frames"):
        check_import(project, tmp_path)
    with pytest.raises(DatasetImportError):
        import_path(project, tmp_path)
    assert not Masklet.objects.exists()


def test_video_matching_by_stem_and_ambiguity(project) -> None:
    video = Video.objects.create(project=project, name="walk.mp4", width=12, height=10)
    assert find_video(project, "walk") == video
    assert find_video(project, "walk.mp4") == video
    assert find_video(project, "run") is None
    Video.objects.create(project=project, name="walk.mp4")
    with pytest.raises(DatasetImportError, match="several videos"):
        find_video(project, "walk.mp4")


def test_zip_with_escaping_paths_is_refused(project, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../evil.json", "{}")
    with pytest.raises(DatasetImportError, match="escapes"):
        check_import(project, bad)


def test_davis_zip_with_frames_stores_them(project, tmp_path: Path) -> None:
    from engine.videos import storage

    src = tmp_path / "src"
    _davis_folder(src, "walk", [0, 1], (10, 12))
    jpeg = io.BytesIO()
    Image.new("RGB", (12, 10), (200, 10, 10)).save(jpeg, "JPEG")
    archive = tmp_path / "walk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*.png")):
            zf.write(path, f"export/{path.relative_to(src)}")
        for t in range(3):
            zf.writestr(f"export/JPEGImages/walk/{t:05d}.jpg", jpeg.getvalue())
    import_path(project, archive)
    video = Video.objects.get(project=project)
    assert video.frame_count == 3
    assert video.metadata["has_frames"] is True
    assert storage.read_bytes(video.frame_key(2)) == jpeg.getvalue()
