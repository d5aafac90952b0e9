"""Meta's SA-V example through the database: import as masklets, export back field by field."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.datasets.export import export_snapshot
from engine.datasets.import_readers import DatasetImportError
from engine.datasets.importing import check_import, import_path
from engine.datasets.snapshots import do_create_snapshot
from engine.masklets.revisions import FrameMask, revision_frames
from engine.masks.rle import decode_rle
from engine.models import Masklet, Video

EXAMPLE = Path(__file__).parent / "data" / "sav_example"
pytestmark = pytest.mark.django_db


def _originals() -> dict[str, dict[str, Any]]:
    return {
        kind: json.loads((EXAMPLE / f"sav_000001_{kind}.json").read_text())
        for kind in ("manual", "auto")
    }


def _frames(masklet: Masklet | None) -> dict[int, FrameMask]:
    assert masklet is not None
    assert masklet.current_revision is not None
    return revision_frames(masklet.current_revision)


def _assert_same_sav(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        if key == "masklet":
            assert len(ours[key]) == len(value)
            for row_ours, row_theirs in zip(ours[key], value, strict=True):
                for a, b in zip(row_ours, row_theirs, strict=True):
                    assert (a is None) == (b is None)
                    if b is not None:
                        assert a["size"] == b["size"]
                        assert np.array_equal(decode_rle(a), decode_rle(b))
        elif key == "masklet_stability_score" and value and isinstance(value[0], list):
            assert np.array_equal(np.array(ours[key], float), np.array(value, float))
        else:
            # same numbers to their precision and the same types (float vs int as in the file)
            assert ours[key] == value, key
            assert json.dumps(ours[key]) == json.dumps(value), key


def test_example_imports_as_5_manual_and_9_auto_masklets(project, manager) -> None:
    report = import_path(project, EXAMPLE, author=manager, status="verified")
    assert report.masklets == 14
    video = Video.objects.get(project=project)
    assert (video.width, video.height, video.frame_count) == (480, 848, 121)
    assert video.metadata["video_environment"] == "Indoor"
    assert video.metadata["video_split"] == "train"
    assert video.metadata["has_frames"] is False
    assert video.source_fps == pytest.approx(24.0)
    assert video.annotation_fps == pytest.approx(6.0)
    masklets = Masklet.objects.filter(video=video)
    assert masklets.filter(kind="manual").count() == 5
    assert masklets.filter(kind="auto").count() == 9
    assert set(masklets.values_list("status", flat=True)) == {"verified"}
    for m in masklets:
        frames = _frames(m)
        assert sorted(frames) == list(range(121))
        assert {f.source for f in frames.values()} == {"import"}
    auto = masklets.filter(kind="auto").order_by("object_id").first()
    scores = [f.stability for f in _frames(auto).values()]
    assert scores[:2] == [_originals()["auto"]["masklet_stability_score"][t][0] for t in (0, 1)]


def test_example_exports_back_equal_to_the_originals(project, manager) -> None:
    import_path(project, EXAMPLE, author=manager, status="verified")
    snapshot = do_create_snapshot(project, user=manager)
    buffer = io.BytesIO()
    stats = export_snapshot(snapshot, "sav", buffer)
    assert stats.masklets == 14
    assert stats.videos == 1
    with zipfile.ZipFile(buffer) as zf:
        assert sorted(zf.namelist()) == ["sav_000001_auto.json", "sav_000001_manual.json"]
        for kind, original in _originals().items():
            _assert_same_sav(json.loads(zf.read(f"sav_000001_{kind}.json")), original)


def test_reimport_of_the_same_files_doubles_nothing(project, manager) -> None:
    import_path(project, EXAMPLE, author=manager, status="verified")
    again = import_path(project, EXAMPLE, author=manager, status="verified")
    assert again.masklets == 0
    assert sum(v.skipped for v in again.videos) == 14
    assert Masklet.objects.filter(video__project=project).count() == 14


def test_mask_size_not_matching_an_existing_video_is_refused(project, manager) -> None:
    Video.objects.create(
        project=project, name="sav_000001", width=640, height=480, frame_count=200, status="ready"
    )
    with pytest.raises(DatasetImportError, match=r"480x848 \(W x H\).*640x480"):
        check_import(project, EXAMPLE / "sav_000001_manual.json")
    with pytest.raises(DatasetImportError):
        import_path(project, EXAMPLE, author=manager, status="verified")
    assert not Masklet.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json at all", "is not JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"masklet": [], "video_id": "x"}', "lacks field"),
        (b'{"hello": 1}', "neither SA-V"),
    ],
)
def test_bad_files_get_clear_errors(project, tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "x.json"
    bad.write_bytes(content)
    with pytest.raises(DatasetImportError, match=message):
        check_import(project, bad)


def test_edited_frame_counts_follow_new_revisions(project, manager) -> None:
    from engine.masklets.revisions import do_save_revision

    import_path(project, EXAMPLE / "sav_000001_manual.json", author=manager, status="verified")
    masklet = Masklet.objects.get(video__project=project, object_id=0)
    first = _frames(masklet)
    do_save_revision(
        masklet,
        author=manager,
        frames={3: first[5], 4: first[5]},
        base_revision_id=masklet.current_revision_id,
        edited_frames=[3, 4],
    )
    buffer = io.BytesIO()
    export_snapshot(do_create_snapshot(project), "sav", buffer)
    with zipfile.ZipFile(buffer) as zf:
        doc = json.loads(zf.read("sav_000001_manual.json"))
    original = _originals()["manual"]
    assert doc["masklet_edited_frame_count"][0] == 2  # the new revision's own edits
    assert doc["masklet_edited_frame_count"][1:] == original["masklet_edited_frame_count"][1:]
    assert doc["masklet"][3][0] == original["masklet"][5][0]
