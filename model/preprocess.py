"""Image preprocessing for SAM 2, bit-for-bit as the official code does it, without torchvision.

Frames are squashed to `image_size` x `image_size` (no aspect-ratio padding), scaled to [0, 1] and
normalised with the ImageNet mean/std.

* Video path (`frame_to_tensor`): official `sam2.utils.misc._load_img_as_tensor`: PIL
  `convert("RGB").resize((S, S))` with PIL's default filter (bicubic for RGB), `/ 255.0`.
* Image-predictor path (`image_to_tensor`): official `SAM2Transforms`: torchvision `ToTensor` then
  `Resize((S, S))` on the float tensor, which is `F.interpolate(bilinear, antialias=True)`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _normalize(x: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std for an fp32 (3, S, S) tensor in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


def as_pil_rgb(image: Image.Image | np.ndarray) -> Image.Image:
    """A PIL RGB image from a PIL image or a uint8 (H, W, 3) array."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB array, got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr)


def frame_to_tensor(image: Image.Image | np.ndarray, image_size: int) -> torch.Tensor:
    """A video frame as the model input: fp32 tensor (3, S, S), normalised.

    Same operations and dtypes as the official video loader (float64 division by 255, then fp32).
    """
    resized = as_pil_rgb(image).resize((image_size, image_size))
    arr = np.asarray(resized) / 255.0  # float64, as the official loader
    x = torch.from_numpy(arr).permute(2, 0, 1).to(torch.float32)
    return _normalize(x)


def image_to_tensor(image: Image.Image | np.ndarray, image_size: int) -> torch.Tensor:
    """A still image as the image predictor's input: fp32 tensor (3, S, S), normalised.

    Same as the official `SAM2Transforms` (ToTensor, antialiased bilinear resize, normalise).
    """
    arr = np.asarray(as_pil_rgb(image))
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).to(torch.float32).div(255)
    x = F.interpolate(
        x[None], size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
    )[0]
    return _normalize(x)
