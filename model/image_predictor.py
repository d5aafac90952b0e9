"""Image predictor: embed an image once, then answer many prompts with the same embedding.

Same computation as the official `SAM2ImagePredictor` (preprocessing in `model.preprocess`,
`no_mem_embed` added to the stride-16 features, decoder with high-res features, logits clamped to
+-32, optional hole/speck removal, bilinear upsampling to the image size), without torchvision and
at any model image size (feature sizes come from the model, not a table for 1024).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model._prompts import ArrayLike, InvalidPromptError, PredictorStateError, check_points
from model.batched import LowResBatch, check_batched_prompts
from model.postprocess import connected_components
from model.preprocess import image_to_tensor
from model.shared_decoder import SharedImageDecoder, supports


@dataclass(frozen=True)
class ImagePrediction:
    """Masks for one prompt (or B boxes).

    Attributes:
        masks: (C, H, W) bool masks at image resolution (float32 logits if `return_logits`);
            (B, C, H, W) for B > 1 boxes. C = 3 with multimask output, else 1.
        iou_predictions: float32 (C,) or (B, C), the model's quality estimate of each mask.
        low_res_logits: float32 (C, S/4, S/4) or (B, C, S/4, S/4), clamped to +-32; feed one
            back as `mask_input` (shape (1, S/4, S/4)) to refine.
    """

    masks: np.ndarray
    iou_predictions: np.ndarray
    low_res_logits: np.ndarray


@dataclass
class _ImageFeatures:
    image_embed: torch.Tensor  # (1, 256, S/16, S/16), no_mem_embed added
    high_res_feats: list[torch.Tensor]  # [(1, 32, S/4, S/4), (1, 64, S/8, S/8)]
    orig_hw: tuple[int, int]
    shared_decoder: SharedImageDecoder | None = None  # built by the first batched call


class ImagePredictor:
    """SAM-style prompting on still images.

    Args:
        model: a SAM 2 model with the `SAM2Base` API (ours or Meta's), in eval mode.
        mask_threshold: logit threshold of the returned binary masks.
        max_hole_area: fill background holes up to this area in the low-res masks (0: off).
        max_sprinkle_area: remove foreground specks up to this area (0: off).
        dtype: "float32" or "bfloat16" (autocast).
    """

    def __init__(
        self,
        model: Any,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
        dtype: str = "float32",
    ) -> None:
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
        self.model = model
        self.mask_threshold = mask_threshold
        self.max_hole_area = max_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        self.dtype = dtype
        self.device: torch.device = next(model.parameters()).device
        self._features: _ImageFeatures | None = None

    @property
    def is_image_set(self) -> bool:
        return self._features is not None

    def _compute(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.dtype == "bfloat16":
            stack.enter_context(torch.autocast(self.device.type, dtype=torch.bfloat16))
        return stack

    def reset(self) -> None:
        """Forget the current image."""
        self._features = None

    def set_image(self, image: Image.Image | np.ndarray) -> None:
        """Compute the embedding of an RGB image (PIL, or uint8 array (H, W, 3))."""
        self.reset()
        if isinstance(image, Image.Image):
            orig_hw = (image.height, image.width)
        elif isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise InvalidPromptError(
                    f"image must be a uint8 (H, W, 3) RGB array, got {image.dtype} {image.shape}"
                )
            orig_hw = (int(image.shape[0]), int(image.shape[1]))
        else:
            raise InvalidPromptError(f"image must be a PIL image or numpy array, not {type(image)}")
        size = int(self.model.image_size)
        with self._compute():
            x = image_to_tensor(image, size).to(self.device)[None]
            backbone_out = self.model.forward_image(x)
            _, feats, _, feat_sizes = self.model._prepare_backbone_features(backbone_out)
            if self.model.directly_add_no_mem_embed:
                feats[-1] = feats[-1] + self.model.no_mem_embed
            maps = [f.permute(1, 2, 0).reshape(1, -1, h, w) for f, (h, w) in zip(feats, feat_sizes)]
        self._features = _ImageFeatures(maps[-1], maps[:-1], orig_hw)

    def get_image_embedding(self) -> torch.Tensor:
        """(1, 256, S/16, S/16) embedding of the current image."""
        return self._require_features().image_embed

    def _require_features(self) -> _ImageFeatures:
        if self._features is None:
            raise PredictorStateError("no image set: call set_image(...) before predict(...)")
        return self._features

    def predict(
        self,
        point_coords: ArrayLike | None = None,
        point_labels: ArrayLike | None = None,
        box: ArrayLike | None = None,
        mask_input: ArrayLike | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> ImagePrediction:
        """Masks for clicks (x, y pixels; labels 1 positive / 0 negative), box(es), and/or a
        previous low-res logit mask (1, S/4, S/4).

        With `normalize_coords=False` the coordinates are already in [0, 1].
        """
        feats = self._require_features()
        h, w = feats.orig_hw
        size = int(self.model.image_size)
        if point_coords is None and point_labels is None and box is None and mask_input is None:
            raise InvalidPromptError("empty prompt: give points, a box or a mask_input")
        scale_w, scale_h = (w, h) if normalize_coords else (1, 1)
        boxes = None if box is None else np.asarray(box, dtype=np.float64).reshape(-1, 4)
        if point_coords is not None or point_labels is not None or boxes is not None:
            if boxes is not None and len(boxes) > 1:
                if point_coords is not None:
                    raise InvalidPromptError("several boxes cannot be combined with points")
                for b in boxes:
                    check_points(None, None, b, scale_w, scale_h)
                pts, labs = np.zeros((0, 2)), np.zeros((0,), np.int32)
            else:
                pts, labs, _ = check_points(
                    point_coords,
                    point_labels,
                    None if boxes is None else boxes[0],
                    scale_w,
                    scale_h,
                )
        mask_t = None
        if mask_input is not None:
            mask_t = torch.as_tensor(np.asarray(mask_input), dtype=torch.float32)
            if mask_t.dim() == 3:
                mask_t = mask_t[None]
            expected = (size // 4, size // 4)
            if mask_t.dim() != 4 or tuple(mask_t.shape[-2:]) != expected or mask_t.size(1) != 1:
                raise InvalidPromptError(
                    f"mask_input must have shape (1, {expected[0]}, {expected[1]}), "
                    f"got {tuple(mask_t.shape)}"
                )
            if not torch.isfinite(mask_t).all():
                raise InvalidPromptError("mask_input contains NaN or infinite values")

        with self._compute():
            coords = labels = None
            norm = torch.tensor([scale_w, scale_h], dtype=torch.float32)
            if point_coords is not None:
                coords = (torch.tensor(pts, dtype=torch.float32) / norm * size)[None]
                labels = torch.tensor(labs, dtype=torch.int32)[None]
            if boxes is not None:
                box_coords = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 2, 2)
                box_coords = box_coords / norm * size
                box_labels = torch.tensor([[2, 3]], dtype=torch.int32).repeat(len(boxes), 1)
                if coords is not None and labels is not None:
                    coords = torch.cat([box_coords, coords], dim=1)
                    labels = torch.cat([box_labels, labels], dim=1)
                else:
                    coords, labels = box_coords, box_labels
            points = None
            if coords is not None and labels is not None:
                points = (coords.to(self.device), labels.to(self.device))
            low_res, iou = self._decode(
                points,
                None if mask_t is None else mask_t.to(self.device),
                multimask_output,
                repeat_image=points is not None and points[0].shape[0] > 1,
            )
            masks = self._postprocess(low_res, feats.orig_hw)
            low_res = torch.clamp(low_res, -32.0, 32.0)
            out_masks = masks if return_logits else masks > self.mask_threshold
        squeeze = 0 if low_res.size(0) == 1 else None

        def to_np(t: torch.Tensor) -> np.ndarray:
            arr = t.detach().cpu()
            arr = arr.float() if arr.is_floating_point() else arr
            result = arr.numpy()
            return result[0] if squeeze is not None else result

        return ImagePrediction(to_np(out_masks), to_np(iou.float()), to_np(low_res))

    def predict_batch(
        self,
        point_coords: ArrayLike | None = None,
        point_labels: ArrayLike | None = None,
        boxes: ArrayLike | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> ImagePrediction:
        """B independent prompts decoded in one mask-decoder call (the image embedding is shared).

        Prompt b is `point_coords[b]` (N, 2) pixels x, y with `point_labels[b]` (N,) in {1, 0}
        (-1 pads prompts with fewer clicks), and/or `boxes[b]` [x0, y0, x1, y1]. Each prompt gives
        the same masks as `predict` on it alone (up to float rounding of batched matmuls).

        Returns:
            masks (B, C, H, W), iou_predictions (B, C), low_res_logits (B, C, S/4, S/4), with
            C = 3 for multimask output else 1, always with the batch dimension.
        """
        batch = self.decode_batch(
            point_coords, point_labels, boxes, multimask_output, normalize_coords
        )
        with self._compute():
            masks = batch.upscale(batch.logits)
            out_masks = masks if return_logits else masks > self.mask_threshold
            low_res = torch.clamp(batch.logits, -32.0, 32.0)
        return ImagePrediction(
            out_masks.cpu().numpy(), batch.iou_predictions, low_res.cpu().numpy()
        )

    def decode_batch(
        self,
        point_coords: ArrayLike | None = None,
        point_labels: ArrayLike | None = None,
        boxes: ArrayLike | None = None,
        multimask_output: bool = True,
        normalize_coords: bool = True,
    ) -> LowResBatch:
        """`predict_batch` without the upsampling: low-res logits (B, C, S/4, S/4) and IoUs
        (B, C); `LowResBatch.take` upsamples chosen masks to the image later.

        In float32 with our decoder, the prompts go through `SharedImageDecoder` (the image's
        prompt-independent decoder work done once per image, not once per prompt); otherwise
        through the decoder with the image embedding repeated per prompt.
        """
        feats = self._require_features()
        h, w = feats.orig_hw
        scale_w, scale_h = (w, h) if normalize_coords else (1, 1)
        coords, labels = check_batched_prompts(point_coords, point_labels, boxes, scale_w, scale_h)
        size = int(self.model.image_size)
        with self._compute():
            norm = torch.tensor([scale_w, scale_h], dtype=torch.float32)
            coords_t = torch.as_tensor(coords, dtype=torch.float32) / norm * size
            labels_t = torch.as_tensor(labels, dtype=torch.int32)
            points = (coords_t.to(self.device), labels_t.to(self.device))
            shared = self._shared_decoder()
            if shared is None:
                low_res, iou = self._decode(points, None, multimask_output, repeat_image=True)
            else:
                sparse, _ = self.model.sam_prompt_encoder(points=points, boxes=None, masks=None)
                low_res, iou = shared.decode(sparse, multimask_output)
                low_res = low_res.float()
        return LowResBatch(
            logits=low_res,
            iou_predictions=iou.float().cpu().numpy(),
            image_hw=feats.orig_hw,
            upscale=self._upscale,
        )

    def _shared_decoder(self) -> SharedImageDecoder | None:
        """The current image's `SharedImageDecoder` (built once), or None where it does not
        apply: bf16, a decoder other than ours, or a model in training mode."""
        feats = self._require_features()
        if self.dtype != "float32" or self.model.training or not supports(self.model):
            return None
        if feats.shared_decoder is None:
            feats.shared_decoder = SharedImageDecoder(
                self.model, feats.image_embed, feats.high_res_feats
            )
        return feats.shared_decoder

    def _upscale(self, low_res: torch.Tensor) -> torch.Tensor:
        with self._compute():
            return self._postprocess(low_res, self._require_features().orig_hw)

    def _decode(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        mask: torch.Tensor | None,
        multimask_output: bool,
        *,
        repeat_image: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder on the cached image features.

        Args:
            points: (B, N, 2) model-pixel coords and (B, N) labels, or None.
            mask: (B, 1, S/4, S/4) mask prompt logits, or None.
            repeat_image: B > 1 prompts share the one image embedding.

        Returns:
            float32 low-res logits (B, C, S/4, S/4) and IoU predictions (B, C).
        """
        feats = self._require_features()
        sparse, dense = self.model.sam_prompt_encoder(points=points, boxes=None, masks=mask)
        low_res, iou, _, _ = self.model.sam_mask_decoder(
            image_embeddings=feats.image_embed,
            image_pe=self.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=repeat_image,
            high_res_features=feats.high_res_feats,
        )
        return low_res.float(), iou

    def _postprocess(self, low_res: torch.Tensor, orig_hw: tuple[int, int]) -> torch.Tensor:
        """Optional hole/speck removal on (B, C, h, w) logits, then resize to the image."""
        masks = low_res
        flat = masks.flatten(0, 1).unsqueeze(1)
        thr = self.mask_threshold
        # as official: both steps find their components on the original logits
        if self.max_hole_area > 0:
            labels, areas = connected_components(flat <= thr)
            is_hole = ((labels > 0) & (areas <= self.max_hole_area)).reshape(masks.shape)
            masks = torch.where(is_hole, torch.tensor(thr + 10.0), masks)
        if self.max_sprinkle_area > 0:
            labels, areas = connected_components(flat > thr)
            is_speck = ((labels > 0) & (areas <= self.max_sprinkle_area)).reshape(masks.shape)
            masks = torch.where(is_speck, torch.tensor(thr - 10.0), masks)
        return F.interpolate(masks, orig_hw, mode="bilinear", align_corners=False)
