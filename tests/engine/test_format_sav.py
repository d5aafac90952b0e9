"""SA-V JSON: Meta's example files import, derive their own numbers, and export back unchanged."""

import io
import json
from pathlib import Path

import numpy as np
import pytest

from engine.datasets.formats.sav import (
    SavAnnotation,
    SavMasklet,
    SavStyle,
    SavVideo,
    SavWriter,
    compute_stats,
    masklet_areas,
    parse_sav,
    read_sav,
    size_bucket,
    write_sav,
)
from engine.masks.rle import decode_rle, encode_rle

EXAMPLE_DIR = Path("/work/shared/data/sav_example")
# Project copies win when present (tests ship their own data); the shared folder is the fallback.
for candidate in (Path(__file__).parent / "data" / "sav_example", EXAMPLE_DIR):
    if (candidate / "sav_000001_manual.json").exists():
        EXAMPLE_DIR = candidate
        break

pytestmark = [
    pytest.mark.skipif(
        not (EXAMPLE_DIR / "sav_000001_manual.json").exists(), reason="SA-V example files absent"
    ),
    # pycocotools calls np.array(copy=False) on its own objects: numpy 2 warns on each decode.
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]


def _load(kind: str) -> dict:
    return json.loads((EXAMPLE_DIR / f"sav_000001_{kind}.json").read_text())


@pytest.mark.parametrize(("kind", "n_masklets"), [("manual", 5), ("auto", 9)])
def test_example_imports_with_expected_shape(kind: str, n_masklets: int) -> None:
    ann = read_sav(EXAMPLE_DIR / f"sav_000001_{kind}.json")
    assert ann.masklet_type == kind
    assert len(ann.masklets) == n_masklets
    assert ann.annotated_frame_count == 121
    assert ann.video == SavVideo("sav_000001", 20.125, 483, 848, 480, "Indoor", "train")
    assert ann.video.resolution == 407040
    first = decode_rle(ann.masklets[0].frames[0])  # type: ignore[arg-type]
    assert first.shape == (848, 480)  # H = 848, W = 480
    for m in ann.masklets:
        assert len(m.frames) == 121
        assert m.type == kind
        if kind == "auto":
            assert m.stability_scores is not None
            assert len(m.stability_scores) == 121
            assert m.edited_frame_count == 0
        else:
            assert m.stability_scores is None


@pytest.mark.parametrize("kind", ["manual", "auto"])
def test_derived_fields_recomputed_from_decoded_masks_equal_the_file(kind: str) -> None:
    doc = _load(kind)
    ann = parse_sav(doc)
    for k, m in enumerate(ann.masklets):
        areas = [int(decode_rle(rle).sum()) for rle in m.frames]  # type: ignore[arg-type]
        assert areas == masklet_areas(m)
        stats = compute_stats(areas, ann.video.resolution)
        decimals = 10 if kind == "manual" else None
        assert round(stats.size_abs, 10) == pytest.approx(doc["masklet_size_abs"][k], abs=1e-10)
        assert round(stats.size_rel, 10) == pytest.approx(doc["masklet_size_rel"][k], abs=1e-10)
        if decimals is None:  # auto: full float precision, bit for bit
            assert stats.size_abs == doc["masklet_size_abs"][k]
            assert stats.size_rel == doc["masklet_size_rel"][k]
        assert stats.size_bucket == doc["masklet_size_bucket"][k]
        assert stats.visibility_changes == doc["masklet_visibility_changes"][k]
        assert stats.first_appeared_frame == doc["masklet_first_appeared_frame"][k]
        assert stats.frame_count == doc["masklet_frame_count"][k]


def test_manual_masklet_appearing_late_counts_no_change_before_appearing() -> None:
    # Masklet 3 of the manual file is absent until annotated frame 113, then visible:
    # one flip overall, but 0 visibility changes in Meta's numbers.
    ann = read_sav(EXAMPLE_DIR / "sav_000001_manual.json")
    stats = compute_stats(masklet_areas(ann.masklets[3]), ann.video.resolution)
    assert stats.first_appeared_frame == 113
    assert stats.visibility_changes == 0


@pytest.mark.parametrize("kind", ["manual", "auto"])
def test_export_reproduces_the_example_field_by_field_and_byte_for_byte(kind: str) -> None:
    path = EXAMPLE_DIR / f"sav_000001_{kind}.json"
    original = json.loads(path.read_text())
    out = io.StringIO()
    write_sav(out, read_sav(path))
    exported = json.loads(out.getvalue())
    assert list(exported) == list(original)
    for key, value in original.items():
        if key == "masklet":
            continue
        assert exported[key] == value, key
        assert type(exported[key]) is type(value), key
        if isinstance(value, list) and value and not isinstance(value[0], list):
            assert [type(v) for v in exported[key]] == [type(v) for v in value], key
    assert isinstance(exported["video_frame_count"], float)
    first_type = float if kind == "manual" else int
    assert all(type(v) is first_type for v in exported["masklet_first_appeared_frame"])
    for t, (row_a, row_b) in enumerate(zip(original["masklet"], exported["masklet"])):
        for rle_a, rle_b in zip(row_a, row_b):
            np.testing.assert_array_equal(decode_rle(rle_a), decode_rle(rle_b), err_msg=str(t))
    assert out.getvalue() == path.read_text()


def test_streaming_writer_from_numpy_masks_and_none() -> None:
    video = SavVideo("vid", 1.0, 24, 6, 8, "Outdoor", "train")
    a = np.zeros((6, 8), dtype=bool)
    a[1:3, 1:4] = True  # 6 px
    big = np.ones((6, 8), dtype=bool)
    frames: list[list[np.ndarray | None]] = [[a, None], [None, big], [a, big], [a, None]]
    out = io.StringIO()
    writer = SavWriter(out, video, masklet_ids=[7, 9], masklet_type="auto")
    for t, row in enumerate(frames):
        writer.write_frame(row, stability_scores=[0.5 + t / 10, 1.0])
    writer.close()
    doc = json.loads(out.getvalue())
    assert doc["masklet"][0][1] is None
    assert doc["masklet_id"] == [7, 9]
    assert doc["masklet_size_abs"] == [6.0, 48.0]
    assert doc["masklet_size_rel"] == [6 / 48, 1.0]
    assert doc["masklet_visibility_changes"] == [2, 1]  # obj 7: on off on on; obj 9: - on on off
    assert doc["masklet_first_appeared_frame"] == [0, 1]
    assert doc["masklet_stability_score"][2] == [0.7, 1.0]
    assert doc["masklet_num"] == 2
    back = parse_sav(doc)
    assert back.masklets[1].frames[0] is None
    np.testing.assert_array_equal(decode_rle(back.masklets[0].frames[2]), a)  # type: ignore[arg-type]


def test_writer_rejects_wrong_sizes_and_missing_scores() -> None:
    video = SavVideo("vid", 1.0, 24, 6, 8)
    out = io.StringIO()
    writer = SavWriter(out, video, masklet_ids=[0], masklet_type="manual")
    with pytest.raises(ValueError, match="size"):
        writer.write_frame([np.zeros((8, 6), dtype=bool)])
    with pytest.raises(ValueError, match="stability"):
        writer.write_frame([None], stability_scores=[1.0])
    with pytest.raises(ValueError, match="masks"):
        writer.write_frame([None, None])
    auto = SavWriter(io.StringIO(), video, masklet_ids=[0], masklet_type="auto")
    with pytest.raises(ValueError, match="stability"):
        auto.write_frame([None])


def test_never_visible_masklet_and_size_buckets() -> None:
    stats = compute_stats([0, 0, 0], 100)
    assert (stats.size_abs, stats.first_appeared_frame, stats.size_bucket) == (0.0, -1, "small")
    assert size_bucket(1023.9) == "small"
    assert size_bucket(1024) == "medium"
    assert size_bucket(9215.5) == "medium"
    assert size_bucket(9216) == "large"


def test_custom_style_and_round_trip_of_a_built_annotation() -> None:
    video = SavVideo("v", 2.0, 48, 4, 4)
    mask = np.eye(4, dtype=bool)
    ann = SavAnnotation(
        video,
        "manual",
        [SavMasklet(0, [encode_rle(mask), encode_rle(mask), None], edited_frame_count=2)],
    )
    out = io.StringIO()
    write_sav(out, ann, SavStyle(size_decimals=2, first_appeared_as_float=False))
    doc = json.loads(out.getvalue())
    assert doc["masklet_size_rel"] == [0.25]
    assert doc["masklet_first_appeared_frame"] == [0]
    assert doc["masklet_edited_frame_count"] == [2]
    assert doc["masklet_stability_score"] == [None]
    assert read_sav(io.StringIO(out.getvalue())).masklets[0].frames == ann.masklets[0].frames
