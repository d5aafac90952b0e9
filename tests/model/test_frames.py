"""Frame sources, preprocessing and CPU post-processing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model.frames import (
    ArrayFrameSource,
    CallableFrameSource,
    FolderFrameSource,
    FrameSource,
    FrameSourceError,
    list_frame_files,
)
from model.postprocess import connected_components, fill_holes_in_mask_scores
from model.preprocess import IMAGENET_MEAN, IMAGENET_STD, frame_to_tensor, image_to_tensor


def _img(value: int, w: int = 20, h: int = 10) -> Image.Image:
    return Image.fromarray(np.full((h, w, 3), value, np.uint8))


def _jpeg_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def test_folder_orders_integer_names_numerically(tmp_path: Path) -> None:
    for i in (10, 2, 0, 1):
        _img(i * 20).save(tmp_path / f"{i}.jpg")
    (tmp_path / "notes.txt").write_text("ignored")
    src = FolderFrameSource(tmp_path)
    assert isinstance(src, FrameSource)
    assert [p.name for p in src.paths] == ["0.jpg", "1.jpg", "2.jpg", "10.jpg"]
    assert (len(src), src.width, src.height) == (4, 20, 10)
    frame = src.read(3)
    assert isinstance(frame, Image.Image)
    assert frame.mode == "RGB"
    assert abs(int(np.asarray(frame).mean()) - 200) <= 2


def test_folder_falls_back_to_sorted_names(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", "c.jpeg"):
        _img(0).save(tmp_path / name)
    assert [p.name for p in list_frame_files(tmp_path)] == ["a.jpg", "b.png", "c.jpeg"]


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FrameSourceError, match="does not exist"):
        FolderFrameSource(tmp_path / "missing")
    with pytest.raises(FrameSourceError, match="no .jpg"):
        FolderFrameSource(tmp_path)
    _img(0).save(tmp_path / "0.jpg")
    _img(0, w=30).save(tmp_path / "1.jpg")
    src = FolderFrameSource(tmp_path)
    with pytest.raises(FrameSourceError, match="expected 20x10"):
        src.read(1)
    with pytest.raises(FrameSourceError, match="out of range"):
        src.read(2)


def test_callable_source_reads_lazily() -> None:
    calls: list[int] = []

    def read_bytes(idx: int) -> bytes:
        calls.append(idx)
        return _jpeg_bytes(_img(idx * 10))

    src = CallableFrameSource(5, 20, 10, read_bytes)
    assert calls == []  # nothing is read up front
    assert np.asarray(src.read(4)).shape == (10, 20, 3)
    assert calls == [4]
    with pytest.raises(FrameSourceError, match="out of range"):
        src.read(5)
    bad = CallableFrameSource(1, 20, 10, lambda i: b"not an image")
    with pytest.raises(FrameSourceError, match="could not be decoded"):
        bad.read(0)
    wrong = CallableFrameSource(1, 21, 10, lambda i: _jpeg_bytes(_img(0)))
    with pytest.raises(FrameSourceError, match="expected 21x10"):
        wrong.read(0)
    with pytest.raises(FrameSourceError):
        CallableFrameSource(0, 20, 10, read_bytes)


def test_array_source() -> None:
    src = ArrayFrameSource([np.zeros((10, 20, 3), np.uint8)] * 3)
    assert (len(src), src.width, src.height) == (3, 20, 10)
    with pytest.raises(FrameSourceError):
        ArrayFrameSource([])


def test_frame_to_tensor_normalises_a_constant_image() -> None:
    x = frame_to_tensor(_img(255, 33, 17), 64)
    assert x.shape == (3, 64, 64)
    assert x.dtype == torch.float32
    for c in range(3):
        expected = (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(x[c], torch.full((64, 64), expected), atol=1e-6)


def test_image_to_tensor_matches_array_and_pil() -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (30, 50, 3)).astype(np.uint8)
    a = image_to_tensor(arr, 32)
    b = image_to_tensor(Image.fromarray(arr), 32)
    assert a.shape == (3, 32, 32)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="uint8"):
        image_to_tensor(arr.astype(np.float32), 32)


@pytest.mark.official
def test_frame_to_tensor_equals_official_loader(tmp_path: Path) -> None:
    pytest.importorskip("sam2")
    from sam2.utils.misc import load_video_frames_from_jpg_images

    rng = np.random.default_rng(1)
    for i in range(2):
        arr = rng.integers(0, 255, (37, 53, 3)).astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / f"{i}.jpg")
    official, h, w = load_video_frames_from_jpg_images(
        str(tmp_path), 64, offload_video_to_cpu=True, compute_device=torch.device("cpu")
    )
    src = FolderFrameSource(tmp_path)
    assert (h, w) == (src.height, src.width)
    for i in range(2):
        assert torch.equal(frame_to_tensor(src.read(i), 64), official[i])


def test_connected_components_are_eight_connected() -> None:
    mask = torch.zeros(2, 1, 5, 5, dtype=torch.bool)
    mask[0, 0, 0, 0] = mask[0, 0, 1, 1] = True  # diagonal neighbours: one component
    mask[0, 0, 4, 4] = True
    labels, areas = connected_components(mask)
    assert labels[0, 0, 0, 0] == labels[0, 0, 1, 1] != labels[0, 0, 4, 4]
    assert areas[0, 0, 0, 0] == 2
    assert areas[0, 0, 4, 4] == 1
    assert areas[0, 0, 2, 2] == 0
    assert labels[1].sum() == 0
    with pytest.raises(ValueError, match="N, 1, H, W"):
        connected_components(mask[:, 0])


def test_fill_holes_fills_small_background_components_only() -> None:
    logits = torch.full((1, 1, 12, 12), 5.0)
    logits[0, 0, 2, 2] = -3.0  # 1-px hole
    logits[0, 0, 6:10, 6:10] = -3.0  # 16-px hole
    filled = fill_holes_in_mask_scores(logits, 8)
    assert filled[0, 0, 2, 2] == pytest.approx(0.1)
    assert torch.all(filled[0, 0, 6:10, 6:10] == -3.0)
    assert torch.equal(filled[logits > 0], logits[logits > 0])
    with pytest.raises(ValueError):
        fill_holes_in_mask_scores(logits, 0)
