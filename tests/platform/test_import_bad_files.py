"""Damaged or invalid import files are a 400 that queues nothing and stores nothing.

Each case used to be a 500 (a damaged zip, deep JSON, ``Infinity``), or to be queued (202) and
then die in the worker, or to be stored and then break every export of the project (RLEs whose
runs do not cover the frame: pycocotools decodes them into garbage without complaint).
"""

from __future__ import annotations

import copy
import io
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from engine.datasets.import_readers import DatasetImportError
from engine.datasets.importing import import_path, run_import_job
from engine.models import Job, Masklet, Video
from engine.videos import storage
from tests._clients import api_client

EXAMPLE = Path(__file__).parents[1] / "engine" / "data" / "sav_example"
MANUAL = json.loads((EXAMPLE / "sav_000001_manual.json").read_text())
AUTO = json.loads((EXAMPLE / "sav_000001_auto.json").read_text())


def _rows() -> tuple[int, int, int]:
    return Job.objects.count(), Video.objects.count(), Masklet.objects.count()


def _stored(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file())


def _post(project, manager, name: str, content: bytes) -> Any:
    return api_client(manager).post(
        f"/api/projects/{project.pk}/imports/",
        {"file": SimpleUploadedFile(name, content, content_type="application/octet-stream")},
        format="multipart",
    )


def _assert_refused(response: Any, media: Path, before: tuple[int, int, int], says: str) -> None:
    assert response.status_code == 400, response.content
    assert says in response.json()["detail"]
    assert _rows() == before
    assert _stored(media) == []


# --- damaged zips ---------------------------------------------------------------------------


def _zip(compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        zf.writestr("sav_000001_manual.json", json.dumps(MANUAL))
    return buffer.getvalue()


def _bad_crc() -> bytes:
    data = bytearray(_zip(zipfile.ZIP_STORED))
    at = data.index(b'"video_id"') + 2  # inside the stored member: the CRC no longer matches
    data[at] ^= 0x01
    return bytes(data)


def _corrupt_deflate() -> bytes:
    data = bytearray(_zip())
    start = 30 + len("sav_000001_manual.json")  # after the first local header
    data[start + 40 : start + 400] = bytes(360)
    return bytes(data)


def _truncated_member() -> bytes:
    """The member's compressed data is cut short; the central directory still describes it."""
    whole = _zip()
    start = 30 + len("sav_000001_manual.json")
    with zipfile.ZipFile(io.BytesIO(whole)) as zf:
        info = zf.infolist()[0]
    cut = 1000
    end = start + info.compress_size
    shorter = whole[: end - cut] + whole[end:]
    directory = shorter.rindex(b"PK\x01\x02")
    patched = bytearray(shorter)
    patched[directory + 20 : directory + 24] = (info.compress_size - cut).to_bytes(4, "little")
    eocd = patched.rindex(b"PK\x05\x06")
    offset = int.from_bytes(patched[eocd + 16 : eocd + 20], "little") - cut
    patched[eocd + 16 : eocd + 20] = offset.to_bytes(4, "little")
    return bytes(patched)


DAMAGED_ZIPS: dict[str, Callable[[], bytes]] = {
    "bad-crc": _bad_crc,
    "corrupt-deflate": _corrupt_deflate,
    "truncated-member": _truncated_member,
}


@pytest.mark.parametrize("make", DAMAGED_ZIPS.values(), ids=DAMAGED_ZIPS.keys())
def test_damaged_zip_is_400_through_the_api(project, manager, settings, make) -> None:
    before = _rows()
    response = _post(project, manager, "upload.zip", make())
    _assert_refused(response, Path(settings.MEDIA_ROOT), before, "the zip is damaged")


@pytest.mark.parametrize("make", DAMAGED_ZIPS.values(), ids=DAMAGED_ZIPS.keys())
def test_damaged_zip_is_an_import_error_for_the_reader(project, tmp_path: Path, make) -> None:
    archive = tmp_path / "upload.zip"
    archive.write_bytes(make())
    with pytest.raises(DatasetImportError, match="the zip is damaged"):
        import_path(project, archive)
    assert not Video.objects.exists()


def test_import_job_whose_stored_zip_is_damaged_fails_with_the_reason(project, manager) -> None:
    # given: a queued import whose stored upload is damaged afterwards
    response = _post(project, manager, "upload.zip", _zip())
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    storage.put_file(job.args["key"], io.BytesIO(_bad_crc()))
    # when
    run_import_job(job.pk)
    # then
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "the zip is damaged" in job.error
    assert "internal error" not in job.error
    assert not Video.objects.exists()


# --- deep JSON ------------------------------------------------------------------------------


def test_deeply_nested_json_file_is_400(project, manager, settings) -> None:
    media = Path(settings.MEDIA_ROOT)
    before = _rows()
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    _assert_refused(_post(project, manager, "x.json", deep), media, before, "nests")
    inside = json.dumps({**MANUAL, "video_environment": "@@"}).replace(
        '"@@"', "[" * 100_000 + "]" * 100_000
    )
    _assert_refused(_post(project, manager, "x.json", inside.encode()), media, before, "nests")


# --- invalid SA-V values --------------------------------------------------------------------


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc[key] = value

    return change


def _set_rle(counts: Any, size: list[int] | None = None) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        row = next(r for r in doc["masklet"] if r[0] is not None)
        row[0] = {"size": size or row[0]["size"], "counts": counts}

    return change


def _set_score(value: float) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["masklet_stability_score"][3][1] = value

    return change


SAV_CASES: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], None], str]] = {
    "width-infinite": (MANUAL, _set("video_width", math.inf), "video_width"),
    "width-nan": (MANUAL, _set("video_width", math.nan), "video_width"),
    "width-negative": (MANUAL, _set("video_width", -480.0), "video_width"),
    "width-fraction": (MANUAL, _set("video_width", 480.5), "video_width"),
    "height-huge": (MANUAL, _set("video_height", 1e300), "video_height"),
    "height-zero": (MANUAL, _set("video_height", 0), "video_height"),
    "duration-nan": (MANUAL, _set("video_duration", math.nan), "video_duration"),
    "duration-negative": (MANUAL, _set("video_duration", -1.0), "video_duration"),
    "frame-count-infinite": (MANUAL, _set("video_frame_count", math.inf), "video_frame_count"),
    "video-id-nul": (MANUAL, _set("video_id", "sav\x00001"), "video_id"),
    "environment-not-text": (MANUAL, _set("video_environment", {"a": 1}), "video_environment"),
    "masklet-id-negative": (MANUAL, _set("masklet_id", [-1, *MANUAL["masklet_id"][1:]]), "id"),
    "masklet-id-huge": (MANUAL, _set("masklet_id", [2**40, *MANUAL["masklet_id"][1:]]), "id"),
    "edited-count-nan": (
        MANUAL,
        _set("masklet_edited_frame_count", [math.nan] * len(MANUAL["masklet_id"])),
        "masklet_edited_frame_count",
    ),
    "stability-nan": (AUTO, _set_score(math.nan), "masklet_stability_score"),
    "stability-negative": (AUTO, _set_score(-0.5), "masklet_stability_score"),
    "stability-infinite": (AUTO, _set_score(math.inf), "masklet_stability_score"),
    "rle-garbage": (MANUAL, _set_rle("garbage!!"), "RLE"),
    "rle-empty": (MANUAL, _set_rle(""), "RLE"),
    "rle-short": (MANUAL, _set_rle("0"), "RLE runs cover 0 pixels"),
    "rle-negative-runs": (MANUAL, _set_rle([-5, 848 * 480 + 5]), "negative"),
    "rle-list-short": (MANUAL, _set_rle([3, 4]), "RLE runs cover 7 pixels"),
    "rle-size-negative": (MANUAL, _set_rle("PPYo1", [-848, 480]), "RLE size"),
}


@pytest.mark.parametrize(("base", "change", "field"), SAV_CASES.values(), ids=SAV_CASES.keys())
def test_invalid_sav_file_is_400_naming_the_field(
    project, manager, settings, base, change, field: str
) -> None:
    doc = copy.deepcopy(base)
    change(doc)
    before = _rows()
    response = _post(project, manager, "sav_000001_manual.json", json.dumps(doc).encode())
    _assert_refused(response, Path(settings.MEDIA_ROOT), before, field)


def test_valid_sav_file_is_still_queued(project, manager) -> None:
    assert _post(project, manager, "a.json", json.dumps(MANUAL).encode()).status_code == 202


# --- invalid COCO values --------------------------------------------------------------------


def _coco(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "categories": [{"id": 1, "name": "cup"}],
        "videos": [{"id": 1, "name": "cup", "height": 4, "width": 5, "frame_count": 2}],
        "images": [
            {"id": 1, "file_name": "", "height": 4, "width": 5, "video_id": 1, "frame_index": 0}
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "track_id": 7,
                "segmentation": {"size": [4, 5], "counts": [3, 2, 15]},
            }
        ],
    }
    for key, value in changes.items():
        record, field = key.split("__")
        doc[record][0][field] = value
    return doc


COCO_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "rle-garbage": (
        _coco(annotations__segmentation={"size": [4, 5], "counts": "garbage!!"}),
        "RLE",
    ),
    "rle-empty": (_coco(annotations__segmentation={"size": [4, 5], "counts": ""}), "RLE"),
    "rle-negative": (_coco(annotations__segmentation={"size": [4, 5], "counts": [-1, 21]}), "RLE"),
    "polygon-nan": (_coco(annotations__segmentation=[[0, 0, 3, math.nan, 3, 3]]), "polygon"),
    "image-height-infinite": (_coco(images__height=math.inf), "image height"),
    "image-width-negative": (_coco(images__width=-5), "image width"),
    "frame-index-negative": (_coco(images__frame_index=-1), "frame_index"),
    "score-nan": (_coco(annotations__score=math.nan), "score"),
    "category-nul": (_coco(categories__name="c\x00p"), "category name"),
    "video-name-nul": (_coco(videos__name="c\x00p"), "video name"),
}


@pytest.mark.parametrize(("doc", "field"), COCO_CASES.values(), ids=COCO_CASES.keys())
def test_invalid_coco_file_is_400_naming_the_field(
    project, manager, settings, doc: dict[str, Any], field: str
) -> None:
    before = _rows()
    response = _post(project, manager, "coco.json", json.dumps(doc).encode())
    _assert_refused(response, Path(settings.MEDIA_ROOT), before, field)


def test_valid_coco_file_is_still_queued(project, manager) -> None:
    assert _post(project, manager, "coco.json", json.dumps(_coco()).encode()).status_code == 202
