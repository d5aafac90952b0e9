"""Export -> import through the database gives identical masks for SA-V, DAVIS and COCO."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.datasets.export import export_snapshot
from engine.datasets.importing import import_path
from engine.datasets.snapshots import ExportError, do_create_snapshot
from engine.masklets.revisions import (
    FrameMask,
    do_create_masklet,
    do_save_revision,
    revision_frames,
)
from engine.masks.rle import decode_rle_or_empty, encode_rle
from engine.models import Masklet, Video
from engine.videos import storage

pytestmark = pytest.mark.django_db
H, W, FRAMES = 24, 32, 6


def _jpeg(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (W, H), (index * 40 % 256, 80, 120)).save(buffer, "JPEG")
    return buffer.getvalue()


def _box(t: int, x0: int, width: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[2 + t % 3 : 10 + t % 3, x0 + t : x0 + t + width] = True
    return mask


@pytest.fixture
def clip(project, manager):
    """A ready 32x24 video of 6 stored frames with 3 verified masklets and one draft."""
    video = Video.objects.create(
        project=project,
        name="street.mp4",
        width=W,
        height=H,
        frame_count=FRAMES,
        status="ready",
        source_fps=24.0,
        duration=1.0,
    )
    for t in range(FRAMES):
        storage.put_file(video.frame_key(t), io.BytesIO(_jpeg(t)))
    specs = [("manual", 0, 5), ("manual", 12, 3), ("auto", 20, 4)]
    for object_id, (kind, x0, width) in enumerate(specs):
        frames = {
            t: FrameMask(
                encode_rle(_box(t, x0, width)), "propagated", 0.9 if kind == "auto" else None
            )
            for t in range(FRAMES)
        }
        frames[FRAMES - 1] = FrameMask(None, "propagated")  # absent on the last frame
        do_create_masklet(
            video,
            author=manager,
            frames=frames,
            object_id=object_id,
            kind=kind,
            status="verified",
            edited_frames=[0, 2],
        )
    do_create_masklet(
        video,
        author=manager,
        object_id=7,
        status="draft",
        frames={0: FrameMask(encode_rle(_box(0, 26, 2)))},
    )
    return video


def _masks(video: Video) -> dict[int, list[np.ndarray]]:
    out = {}
    for m in Masklet.objects.filter(video=video, status="verified").order_by("object_id"):
        assert m.current_revision is not None
        frames = revision_frames(m.current_revision)
        out[m.object_id] = [
            decode_rle_or_empty(frames[t].rle if t in frames else None, H, W) for t in range(FRAMES)
        ]
    return out


@pytest.mark.parametrize("fmt", ["sav", "davis", "coco"])
def test_export_then_import_gives_identical_masks(fmt, clip, project, manager, tmp_path: Path):
    from engine.accounts.projects import do_create_project

    zip_path = tmp_path / f"export-{fmt}.zip"
    stats = export_snapshot(do_create_snapshot(project), fmt, zip_path)
    assert stats.masklets == 3  # the draft is not in the snapshot
    target = do_create_project(f"copy {fmt}", manager)
    report = import_path(target, zip_path, author=manager, status="verified")
    assert report.masklets == 3
    imported = Video.objects.get(project=target)
    assert (imported.width, imported.height, imported.frame_count) == (W, H, FRAMES)
    original, copied = _masks(clip), _masks(imported)
    assert len(copied) == 3
    for (_, a), (_, b) in zip(sorted(original.items()), sorted(copied.items()), strict=True):
        for t in range(FRAMES):
            assert np.array_equal(a[t], b[t]), t
    kinds = list(
        Masklet.objects.filter(video=imported).order_by("object_id").values_list("kind", flat=True)
    )
    assert kinds == ["manual", "manual", "auto"]
    if fmt in ("davis", "coco"):  # frames travel with these formats
        assert storage.read_bytes(imported.frame_key(2)) == _jpeg(2)


def test_snapshot_ignores_later_edits(clip, project, manager) -> None:
    snapshot = do_create_snapshot(project)
    masklet = Masklet.objects.get(video=clip, object_id=0)
    do_save_revision(
        masklet,
        author=manager,
        frames={0: FrameMask(None)},
        base_revision_id=masklet.current_revision_id,
    )
    buffer = io.BytesIO()
    export_snapshot(snapshot, "sav", buffer)
    with zipfile.ZipFile(buffer) as zf:
        doc = json.loads(zf.read("street_manual.json"))
    assert doc["masklet"][0][0] is not None  # the revision frozen in the snapshot
    assert doc["masklet_edited_frame_count"] == [2, 2]
    fresh = io.BytesIO()
    export_snapshot(do_create_snapshot(project), "sav", fresh)
    with zipfile.ZipFile(fresh) as zf:
        assert json.loads(zf.read("street_manual.json"))["masklet"][0][0] is None


def test_davis_export_layout_and_palette(clip, project) -> None:
    buffer = io.BytesIO()
    stats = export_snapshot(do_create_snapshot(project, kinds=["manual"]), "davis", buffer)
    assert stats.masklets == 2
    with zipfile.ZipFile(buffer) as zf:
        names = set(zf.namelist())
        assert {f"JPEGImages/street/{t:05d}.jpg" for t in range(FRAMES)} <= names
        assert {f"Annotations/street/{t:05d}.png" for t in range(FRAMES)} <= names
        with Image.open(io.BytesIO(zf.read("Annotations/street/00001.png"))) as png:
            assert png.mode == "P"
            index = np.array(png)
        meta = json.loads(zf.read("meta.json"))
    assert set(np.unique(index)) == {0, 1, 2}
    assert np.array_equal(index == 1, _box(1, 0, 5))
    assert meta["videos"]["street"]["objects"]["2"]["object_id"] == 1


def test_coco_export_has_rle_and_track_ids(clip, project) -> None:
    buffer = io.BytesIO()
    export_snapshot(do_create_snapshot(project), "coco", buffer)
    with zipfile.ZipFile(buffer) as zf:
        doc = json.loads(zf.read("annotations.json"))
    tracks = {a["track_id"] for a in doc["annotations"]}
    assert tracks == set(Masklet.objects.filter(status="verified").values_list("pk", flat=True))
    assert len(doc["annotations"]) == 3 * (FRAMES - 1)
    first = doc["annotations"][0]
    assert set(first["segmentation"]) == {"size", "counts"}
    assert first["iscrowd"] == 0
    assert [len([i for i in doc["images"] if i["video_id"] == clip.pk])] == [FRAMES]
    assert all(
        "score" in a
        for a in doc["annotations"]
        if a["track_id"] == Masklet.objects.get(object_id=2).pk
    )


def test_unknown_format_and_foreign_videos_are_refused(clip, project, manager) -> None:
    from engine.accounts.projects import do_create_project

    with pytest.raises(ExportError, match="unknown export format"):
        export_snapshot(do_create_snapshot(project), "yaml", io.BytesIO())
    other = do_create_project("other", manager)
    with pytest.raises(ExportError, match="not in project"):
        do_create_snapshot(other, video_ids=[clip.pk])
