"""Image predictor: embedding reuse, outputs, errors, and parity with Meta's predictor."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model._prompts import InvalidPromptError, PredictorStateError
from model.image_predictor import ImagePredictor


def _image(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 50, (h, w, 3)).astype(np.uint8)
    img[10:30, 20:45] = (230, 30, 30)
    return img


@pytest.fixture
def predictor(tiny_model: Any) -> ImagePredictor:
    return ImagePredictor(tiny_model)


def test_predict_before_set_image_is_a_clear_error(predictor: ImagePredictor) -> None:
    with pytest.raises(PredictorStateError, match="set_image"):
        predictor.predict(point_coords=[[1, 1]], point_labels=[1])
    with pytest.raises(PredictorStateError):
        predictor.get_image_embedding()


def test_embedding_is_computed_once_for_many_prompts(predictor: ImagePredictor) -> None:
    calls = []
    original = predictor.model.forward_image

    def counting(x: torch.Tensor) -> Any:
        calls.append(x.shape)
        return original(x)

    predictor.model.forward_image = counting
    try:
        predictor.set_image(_image())
        size = predictor.model.image_size
        multi = predictor.predict(point_coords=[[30, 20]], point_labels=[1])
        single = predictor.predict(box=[20, 10, 45, 30], multimask_output=False)
        refined = predictor.predict(
            point_coords=[[30, 20], [5, 5]],
            point_labels=[1, 0],
            mask_input=multi.low_res_logits[np.argmax(multi.iou_predictions)][None],
            multimask_output=False,
            return_logits=True,
        )
    finally:
        del predictor.model.forward_image
    assert calls == [(1, 3, size, size)]
    assert multi.masks.shape == (3, 48, 64)
    assert multi.masks.dtype == np.bool_
    assert multi.iou_predictions.shape == (3,)
    assert multi.low_res_logits.shape == (3, size // 4, size // 4)
    assert np.abs(multi.low_res_logits).max() <= 32
    assert single.masks.shape == (1, 48, 64)
    assert refined.masks.dtype == np.float32
    assert refined.masks.shape == (1, 48, 64)
    assert predictor.get_image_embedding().shape == (1, 256, size // 16, size // 16)


def test_batched_boxes(predictor: ImagePredictor) -> None:
    predictor.set_image(_image())
    out = predictor.predict(box=[[0, 0, 30, 30], [20, 10, 60, 40]], multimask_output=False)
    assert out.masks.shape == (2, 1, 48, 64)
    assert out.iou_predictions.shape == (2, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"point_coords": [[65, 1]], "point_labels": [1]}, "outside the 64x48"),
        ({"point_coords": [[np.nan, 1]], "point_labels": [1]}, "NaN"),
        ({"point_coords": [[1, 1]], "point_labels": [1, 0]}, "1 points but 2 labels"),
        ({}, "empty prompt"),
        ({"box": [5, 5, 1, 1]}, "x0 <= x1"),
        ({"mask_input": np.zeros((1, 7, 7))}, "mask_input must have shape"),
    ],
)
def test_bad_prompts(predictor: ImagePredictor, kwargs: dict[str, Any], message: str) -> None:
    predictor.set_image(_image())
    with pytest.raises(InvalidPromptError, match=message):
        predictor.predict(**kwargs)


def test_bad_images(predictor: ImagePredictor) -> None:
    with pytest.raises(InvalidPromptError, match="uint8"):
        predictor.set_image(np.zeros((4, 4), np.float32))
    with pytest.raises(InvalidPromptError):
        predictor.set_image("image.png")  # type: ignore[arg-type]
    assert not predictor.is_image_set


def test_hole_filling_and_sprinkles(tiny_model: Any) -> None:
    plain = ImagePredictor(tiny_model)
    cleaned = ImagePredictor(tiny_model, max_hole_area=1e6, max_sprinkle_area=1e6)
    for p in (plain, cleaned):
        p.set_image(_image())
    a = plain.predict(point_coords=[[30, 20]], point_labels=[1], return_logits=True)
    b = cleaned.predict(point_coords=[[30, 20]], point_labels=[1], return_logits=True)
    # with unbounded areas every component is a hole or a speck: all logits move by +-10
    assert a.masks.shape == b.masks.shape
    assert not np.allclose(a.masks, b.masks)


def _fake_torchvision() -> dict[str, types.ModuleType]:
    """Just the three torchvision transforms the official image predictor imports, written
    with the tensor semantics torchvision documents (ToTensor /255, antialiased bilinear resize,
    Normalize)."""

    class ToTensor:
        def __call__(self, pic: Any) -> torch.Tensor:
            arr = np.array(pic)
            return torch.from_numpy(arr).permute(2, 0, 1).contiguous().float().div(255)

    class Resize(nn.Module):
        def __init__(self, size: tuple[int, int]) -> None:
            super().__init__()
            self.size = size

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(
                x[None], size=self.size, mode="bilinear", align_corners=False, antialias=True
            )[0]

    class Normalize(nn.Module):
        def __init__(self, mean: list[float], std: list[float]) -> None:
            super().__init__()
            self.mean, self.std = mean, std

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mean = torch.tensor(self.mean)[:, None, None]
            std = torch.tensor(self.std)[:, None, None]
            return (x - mean) / std

    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor = ToTensor  # type: ignore[attr-defined]
    transforms.Resize = Resize  # type: ignore[attr-defined]
    transforms.Normalize = Normalize  # type: ignore[attr-defined]
    tv.transforms = transforms  # type: ignore[attr-defined]
    return {"torchvision": tv, "torchvision.transforms": transforms}


@pytest.mark.official
def test_matches_official_image_predictor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sam2")
    from sam2.build_sam import build_sam2 as official_build

    from model.build import build_sam2
    from model.config import get_config

    size = 256
    side = size // 16
    torch.manual_seed(0)
    official_model = official_build(
        "configs/sam2.1/sam2.1_hiera_t.yaml",
        None,
        device="cpu",
        hydra_overrides_extra=[
            f"++model.image_size={size}",
            f"++model.memory_attention.layer.self_attention.feat_sizes=[{side},{side}]",
            f"++model.memory_attention.layer.cross_attention.feat_sizes=[{side},{side}]",
        ],
    )
    torch.save({"model": official_model.state_dict()}, tmp_path / "ckpt.pt")
    ours = ImagePredictor(build_sam2(get_config("sam2.1_hiera_t", size), tmp_path / "ckpt.pt"))

    for name, module in _fake_torchvision().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(torch.jit, "script", lambda m: m)
    # import the official image predictor against the stand-in, and forget it afterwards
    for name in ("sam2.utils.transforms", "sam2.sam2_image_predictor"):
        monkeypatch.setitem(sys.modules, name, None)
        del sys.modules[name]
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    official = SAM2ImagePredictor(official_model)
    official._bb_feat_sizes = [(size // 4,) * 2, (size // 8,) * 2, (size // 16,) * 2]

    image = _image(90, 120)
    official.set_image(image)
    ours.set_image(image)
    prompts: list[dict[str, Any]] = [
        {"point_coords": [[60, 30]], "point_labels": [1]},
        {"point_coords": [[60, 30], [10, 80]], "point_labels": [1, 0], "multimask_output": False},
        {"box": [30, 15, 95, 70], "multimask_output": False},
        {"box": [30, 15, 95, 70], "point_coords": [[60, 30]], "point_labels": [1]},
    ]
    for kwargs in prompts:
        o_masks, o_iou, o_low = official.predict(**kwargs)
        result = ours.predict(**kwargs)
        np.testing.assert_allclose(result.iou_predictions, o_iou, atol=1e-4)
        np.testing.assert_allclose(result.low_res_logits, o_low, atol=1e-3, rtol=1e-3)
        agree = (result.masks == o_masks).mean()
        assert agree > 0.999, kwargs
