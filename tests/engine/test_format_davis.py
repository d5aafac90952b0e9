"""DAVIS / YouTube-VOS folders: palette PNGs, overlap rule, and an identical round trip."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.datasets.formats.davis import (
    DAVIS_PALETTE,
    OverlapRule,
    compose_index_mask,
    decode_index_png,
    directory_sink,
    encode_index_png,
    iter_davis_frames,
    list_davis_videos,
    read_davis_video,
    read_per_object_png_video,
    split_index_mask,
    write_davis_video,
)
from engine.masks.rle import encode_rle

HW = (24, 32)

pytestmark = pytest.mark.filterwarnings(
    # pycocotools calls np.array(copy=False) on its own objects: numpy 2 warns on each decode.
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (*HW, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _disc(cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: HW[0], : HW[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_palette_is_davis_voc_colours() -> None:
    colours = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)
    assert colours[0].tolist() == [0, 0, 0]
    assert colours[1].tolist() == [128, 0, 0]
    assert colours[2].tolist() == [0, 128, 0]
    assert colours[3].tolist() == [128, 128, 0]
    assert colours[4].tolist() == [0, 0, 128]
    assert colours[255].tolist() == [224, 224, 192]


def test_png_is_indexed_with_the_palette_and_decodes_back() -> None:
    index = np.zeros(HW, dtype=np.uint8)
    index[2:5, 3:9] = 1
    index[10:20, 10:12] = 7
    png = encode_index_png(index)
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "P"
        palette = image.getpalette()
        assert palette is not None
        assert palette[:6] == [0, 0, 0, 128, 0, 0]
    np.testing.assert_array_equal(decode_index_png(png), index)
    # An RGB rendering of the same annotation maps back through the palette.
    rgb = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(rgb, format="PNG")
    np.testing.assert_array_equal(decode_index_png(rgb.getvalue()), index)


@pytest.mark.parametrize(
    ("rule", "winner"), [(OverlapRule.HIGHER_ID_WINS, 5), (OverlapRule.SMALLER_ON_TOP, 2)]
)
def test_overlap_rule_decides_contested_pixels(rule: OverlapRule, winner: int) -> None:
    small = np.zeros(HW, dtype=bool)
    small[5:8, 5:8] = True  # object 2, 9 px
    large = np.zeros(HW, dtype=bool)
    large[0:10, 0:10] = True  # object 5, 100 px, covers object 2
    index, lost = compose_index_mask({2: small, 5: encode_rle(large)}, HW, rule)
    assert lost == 9
    assert (index[5:8, 5:8] == winner).all()
    assert index[0, 0] == 5
    assert (index[10:, :] == 0).all()


def test_object_ids_outside_1_to_255_are_refused() -> None:
    with pytest.raises(ValueError):
        compose_index_mask({0: np.zeros(HW, dtype=bool)}, HW)
    with pytest.raises(ValueError):
        compose_index_mask({256: np.zeros(HW, dtype=bool)}, HW)


def test_round_trip_through_a_folder_gives_identical_masks(tmp_path: Path) -> None:
    n_frames = 9
    annotated = range(0, n_frames, 4)  # YouTube-VOS style: every 4th frame
    truth: dict[int, dict[int, np.ndarray]] = {}
    for t in annotated:
        truth[t] = {
            1: _disc(8, 6 + t, 4),
            3: _disc(16, 20, 3 + t / 4) if t != 4 else np.zeros(HW, dtype=bool),  # absent on 4
            12: _disc(4, 28, 2),
        }
    report = write_davis_video(
        directory_sink(tmp_path),
        "clip",
        ((t, _jpeg(t)) for t in range(n_frames)),
        lambda t: truth.get(t),
        HW,
    )
    assert (report.frames_written, report.annotations_written, report.overlap_pixels) == (9, 3, 0)
    assert (tmp_path / "JPEGImages" / "clip" / "00008.jpg").exists()
    assert (tmp_path / "Annotations" / "clip" / "00004.png").exists()
    assert not (tmp_path / "Annotations" / "clip" / "00001.png").exists()
    assert list_davis_videos(tmp_path) == ["clip"]
    assert [t for t, _ in iter_davis_frames(tmp_path, "clip")] == list(range(n_frames))

    video = read_davis_video(tmp_path, "clip")
    assert video.frame_hw == HW
    assert video.frame_indices == [0, 4, 8]
    assert sorted(video.masklets) == [1, 3, 12]
    for t in annotated:
        for obj, mask in truth[t].items():
            np.testing.assert_array_equal(video.mask(obj, t), mask)


def test_split_index_mask_skips_background() -> None:
    index = np.array([[0, 1], [2, 2]], dtype=np.uint8)
    parts = split_index_mask(index)
    assert sorted(parts) == [1, 2]
    assert parts[2].sum() == 2


def test_sav_per_object_layout_keeps_overlapping_objects(tmp_path: Path) -> None:
    a = _disc(10, 10, 6)
    b = _disc(12, 14, 6)  # overlaps a
    assert (a & b).any()
    for obj, mask in ((1, a), (2, b)):
        folder = tmp_path / "Annotations_6fps" / "sav_x" / f"{obj:03d}"
        folder.mkdir(parents=True)
        for t in (0, 4):
            Image.fromarray((mask * 255).astype(np.uint8)).save(folder / f"{t:05d}.png")
    video = read_per_object_png_video(tmp_path, "sav_x")
    assert video.frame_indices == [0, 4]
    assert video.frame_hw == HW
    np.testing.assert_array_equal(video.mask(1, 4), a)
    np.testing.assert_array_equal(video.mask(2, 0), b)
