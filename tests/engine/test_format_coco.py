"""COCO JSON with RLE masks and track ids: streaming writer, reader, round trip."""

import io
import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from engine.datasets.formats.coco import (
    CocoCategory,
    CocoVideo,
    CocoWriter,
    read_coco,
    tracks,
)
from engine.masks.rle import decode_rle, encode_rle

HW = (20, 30)

pytestmark = pytest.mark.filterwarnings(
    # pycocotools calls np.array(copy=False) on its own objects: numpy 2 warns on each decode.
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros(HW, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _export(masklets: dict[int, dict[int, np.ndarray | None]], n_frames: int) -> str:
    out = io.StringIO()
    writer = CocoWriter(out, [CocoCategory(1, "object")])
    writer.add_video(CocoVideo(10, "clip", HW[0], HW[1], n_frames))
    for t in range(n_frames):
        image_id = writer.add_image(
            video_id=10, frame_index=t, file_name=f"clip/{t:05d}.jpg", height=HW[0], width=HW[1]
        )
        for track_id, frames in masklets.items():
            writer.add_annotation(
                image_id=image_id, track_id=track_id, category_id=1, mask=frames.get(t)
            )
    writer.close()
    return out.getvalue()


def test_round_trip_gives_identical_masks_per_track() -> None:
    masklets: dict[int, dict[int, np.ndarray | None]] = {
        101: {0: _box(2, 6, 3, 9), 1: _box(3, 7, 4, 10), 2: None},
        102: {0: _box(10, 18, 0, 30), 1: np.zeros(HW, dtype=bool), 2: _box(0, 20, 29, 30)},
    }
    text = _export(masklets, 3)
    dataset = read_coco(io.StringIO(text))
    assert [c.name for c in dataset.categories] == ["object"]
    assert [(v.id, v.frame_count) for v in dataset.videos] == [(10, 3)]
    assert [(i.id, i.frame_index) for i in dataset.images] == [(1, 0), (2, 1), (3, 2)]
    by_track = tracks(dataset)
    assert sorted(by_track) == [101, 102]
    for track_id, frames in masklets.items():
        track = by_track[track_id]
        assert track.video_id == 10
        present = {t: m for t, m in frames.items() if m is not None and m.any()}
        assert sorted(track.frames) == sorted(present)  # None and empty masks are not written
        for t, mask in present.items():
            np.testing.assert_array_equal(decode_rle(track.frames[t]), mask)


def test_annotations_carry_area_bbox_and_load_in_pycocotools_terms() -> None:
    text = _export({7: {0: _box(2, 6, 3, 9)}}, 1)
    doc = json.loads(text)
    (ann,) = doc["annotations"]
    assert ann["track_id"] == 7
    assert ann["area"] == 24.0
    assert ann["bbox"] == [3.0, 2.0, 6.0, 4.0]
    assert ann["iscrowd"] == 0
    seg = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
    assert coco_mask.area(seg) == 24
    assert {"images", "annotations", "categories", "videos", "info"} <= set(doc)


def test_keep_empty_writes_zero_area_annotations() -> None:
    out = io.StringIO()
    writer = CocoWriter(out, [CocoCategory(1, "object")], keep_empty=True)
    image_id = writer.add_image(video_id=1, frame_index=0, file_name="a.jpg", height=4, width=5)
    assert (
        writer.add_annotation(
            image_id=image_id, track_id=1, category_id=1, mask=np.zeros((4, 5), dtype=bool)
        )
        == 1
    )
    assert writer.add_annotation(image_id=image_id, track_id=2, category_id=1, mask=None) is None
    writer.close()
    assert json.loads(out.getvalue())["annotations"][0]["area"] == 0.0


def test_writer_validates_references() -> None:
    writer = CocoWriter(io.StringIO(), [CocoCategory(1, "object")])
    with pytest.raises(ValueError, match="unknown image"):
        writer.add_annotation(image_id=5, track_id=1, category_id=1, mask=_box(0, 1, 0, 1))
    image_id = writer.add_image(video_id=1, frame_index=0, file_name="a", height=20, width=30)
    with pytest.raises(ValueError, match="category"):
        writer.add_annotation(image_id=image_id, track_id=1, category_id=9, mask=_box(0, 1, 0, 1))
    with pytest.raises(ValueError, match="size"):
        writer.add_annotation(
            image_id=image_id, track_id=1, category_id=1, mask=np.ones((30, 20), dtype=bool)
        )
    with pytest.raises(ValueError, match="duplicate or decreasing"):
        writer.add_image(
            video_id=1, frame_index=1, file_name="b", height=20, width=30, image_id=image_id
        )


def test_reader_accepts_polygons_and_uncompressed_rle() -> None:
    doc = {
        "images": [{"id": 1, "height": 10, "width": 10, "file_name": "x.jpg"}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "track_id": 4,
                "segmentation": {"size": [10, 10], "counts": [0, 10, 90]},
            },
        ],
    }
    dataset = read_coco(io.StringIO(json.dumps(doc)))
    poly, column = dataset.annotations
    assert poly.track_id == 1  # no track id: the annotation is its own track
    assert 12 <= decode_rle(poly.segmentation).sum() <= 25
    expected = np.zeros((10, 10), dtype=bool)
    expected[:, 0] = True
    np.testing.assert_array_equal(decode_rle(column.segmentation), expected)
    assert column.segmentation == encode_rle(expected)
