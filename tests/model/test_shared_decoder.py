"""The shared-image decoder gives the mask decoder's outputs for B prompts on one image, and the
image predictor uses it only where it applies (float32, our decoder, no mask prompt)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch

from model.image_predictor import ImagePredictor
from model.shared_decoder import SharedImageDecoder, supports

H, W = 60, 90


@pytest.fixture
def predictor(tiny_model: Any) -> ImagePredictor:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (H, W, 3)).astype(np.uint8)
    p = ImagePredictor(tiny_model)
    p.set_image(image)
    return p


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("with_boxes", [False, True])
def test_shared_decoder_equals_the_mask_decoder(
    predictor: ImagePredictor, multimask: bool, with_boxes: bool
) -> None:
    model = predictor.model
    feats = predictor._require_features()
    rng = np.random.default_rng(1)
    size = model.image_size
    coords = torch.tensor(rng.uniform(0, size, (10, 2, 2)), dtype=torch.float32)
    labels = torch.tensor(rng.integers(0, 2, (10, 2)), dtype=torch.int32)
    if with_boxes:
        coords = torch.cat([coords, coords.sort(dim=1).values], dim=1)
        labels = torch.cat([labels, torch.tensor([[2, 3]] * 10, dtype=torch.int32)], dim=1)
    with torch.inference_mode():
        expected = predictor._decode((coords, labels), None, multimask, repeat_image=True)
        shared = SharedImageDecoder(model, feats.image_embed, feats.high_res_feats)
        sparse, _ = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        logits, iou = shared.decode(sparse, multimask)
    assert logits.shape == expected[0].shape == (10, 3 if multimask else 1, size // 4, size // 4)
    torch.testing.assert_close(logits, expected[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(iou, expected[1], atol=1e-6, rtol=0)


def test_decode_batch_uses_it_once_per_image(predictor: ImagePredictor) -> None:
    points = np.array([[[10, 10]], [[45, 25]], [[80, 50]]], float)
    with mock.patch.object(
        SharedImageDecoder, "__init__", autospec=True, side_effect=SharedImageDecoder.__init__
    ) as built:
        first = predictor.decode_batch(points, np.ones((3, 1)))
        predictor.decode_batch(points, np.ones((3, 1)))
    assert built.call_count == 1
    singles = [predictor.predict(p, [1], return_logits=True) for p in points]
    for b, single in enumerate(singles):
        np.testing.assert_allclose(first.iou_predictions[b], single.iou_predictions, atol=1e-5)


def test_not_used_in_bf16_or_for_other_decoders(tiny_model: Any) -> None:
    image = np.zeros((H, W, 3), np.uint8)
    bf16 = ImagePredictor(tiny_model, dtype="bfloat16")
    bf16.set_image(image)
    assert bf16._shared_decoder() is None
    float32 = ImagePredictor(tiny_model)
    float32.set_image(image)
    assert float32._shared_decoder() is not None
    assert supports(tiny_model)
    assert not supports(mock.Mock(sam_mask_decoder=torch.nn.Linear(2, 2)))
