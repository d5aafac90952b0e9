"""SAM 2 mask decoder: two-way transformer over prompt tokens and image features, hypernetwork
mask heads, IoU head and object-score head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model._bf16 import Conv2d, ConvTranspose2d, Linear
from model._layers import MLP, LayerNorm2d, activate_fresh
from model.transformer import TwoWayTransformer


def mask_product(hyper_in: torch.Tensor, upscaled: torch.Tensor) -> torch.Tensor:
    """Mask logits from the hypernetwork outputs: `hyper_in [B, M, c]` times the upscaled
    embedding `[B or 1, c, H, W]` (either memory layout) -> `[B, M, H, W]`."""
    b, c, h, w = upscaled.shape
    pixels = upscaled.permute(0, 2, 3, 1)
    if pixels.is_contiguous():  # channels-last: [B, HW, c] rows times [B, c, M]
        per_pixel = torch.matmul(pixels.reshape(b, h * w, c), hyper_in.transpose(1, 2))
        return per_pixel.transpose(1, 2).reshape(hyper_in.shape[0], -1, h, w)
    return torch.matmul(hyper_in, upscaled.reshape(b, c, h * w)).view(-1, hyper_in.shape[1], h, w)


class MaskDecoder(nn.Module):
    """Predicts mask logits at 4x the feature resolution (S/4) from prompt embeddings.

    Output tokens are `[obj_score_token?, iou_token, mask_tokens x (num_multimask_outputs + 1)]`;
    mask token 0 is the single-mask output, 1.. the multimask outputs.
    """

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        use_high_res_features: bool = False,
        iou_prediction_use_sigmoid: bool = False,
        dynamic_multimask_via_stability: bool = False,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
        pred_obj_scores: bool = False,
        pred_obj_scores_mlp: bool = False,
        use_multimask_token_for_obj_ptr: bool = False,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.pred_obj_scores = pred_obj_scores
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, transformer_dim)
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr

        self.output_upscaling = nn.Sequential(
            ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            # applied once per frame by Sam2Model.forward_image, not in forward()
            self.conv_s0 = Conv2d(transformer_dim, transformer_dim // 8, kernel_size=1)
            self.conv_s1 = Conv2d(transformer_dim, transformer_dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim,
            iou_head_hidden_dim,
            self.num_mask_tokens,
            iou_head_depth,
            sigmoid_output=iou_prediction_use_sigmoid,
        )
        if pred_obj_scores:
            self.pred_obj_score_head: nn.Module = (
                MLP(transformer_dim, transformer_dim, 1, 3)
                if pred_obj_scores_mlp
                else Linear(transformer_dim, 1)
            )
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns `(masks [B, M, 4h, 4w] logits, iou [B, M], sam_tokens [B, M' , C],
        object_score_logits [B, 1])` with M = 3 for multimask output else 1.

        image_embeddings `[B or 1, C, h, w]` (`repeat_image` repeats one image per prompt),
        image_pe `[1, C, h, w]`, sparse `[B, N, C]`, dense `[B, C, h, w]`, high_res_features
        `[B, C/8, 4h, 4w]` and `[B, C/4, 2h, 2w]` (already through conv_s0 / conv_s1).
        """
        masks, iou_pred, mask_tokens_out, object_score_logits = self.predict_masks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            repeat_image,
            high_res_features,
        )
        if multimask_output:
            masks, iou_pred = masks[:, 1:], iou_pred[:, 1:]
        elif self.dynamic_multimask_via_stability and not self.training:
            masks, iou_pred = self._dynamic_multimask_via_stability(masks, iou_pred)
        else:
            masks, iou_pred = masks[:, 0:1], iou_pred[:, 0:1]

        if multimask_output and self.use_multimask_token_for_obj_ptr:
            sam_tokens_out = mask_tokens_out[:, 1:]  # [B, 3, C]
        else:
            # the single-mask token is the object token seen in training after several clicks
            sam_tokens_out = mask_tokens_out[:, 0:1]  # [B, 1, C]
        return masks, iou_pred, sam_tokens_out, object_score_logits

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        repeat_image: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All `num_mask_tokens` masks: `(masks [B, 4, 4h, 4w], iou [B, 4], mask_tokens
        [B, 4, C], object_score_logits [B, 1])`."""
        token_list = [self.iou_token.weight, self.mask_tokens.weight]
        first = 0
        if self.pred_obj_scores:
            token_list.insert(0, self.obj_score_token.weight)
            first = 1
        batch = sparse_prompt_embeddings.size(0)
        output_tokens = torch.cat(token_list, dim=0).unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        if repeat_image:
            src = torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0)
        else:
            if image_embeddings.shape[0] != tokens.shape[0]:
                raise ValueError("image and prompt batch sizes differ (use repeat_image)")
            src = image_embeddings
        src = src + dense_prompt_embeddings
        if image_pe.size(0) != 1:
            raise ValueError("image_pe must have batch size 1 (from get_dense_pe())")
        b, c, h, w = src.shape

        hs, src = self.transformer(src, image_pe, tokens)  # image_pe broadcast over prompts
        iou_token_out = hs[:, first, :]
        mask_tokens_out = hs[:, first + 1 : first + 1 + self.num_mask_tokens, :]

        upscaled = self.upscale(src.transpose(1, 2).view(b, c, h, w), high_res_features)
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )  # [B, 4, C/8]
        masks = mask_product(hyper_in, upscaled)
        iou_pred = self.iou_prediction_head(iou_token_out)
        if self.pred_obj_scores:
            object_score_logits = self.pred_obj_score_head(hs[:, 0, :])
        else:
            # object assumed present: sigmoid(10) ~ 1
            object_score_logits = 10.0 * iou_pred.new_ones(iou_pred.shape[0], 1)
        return masks, iou_pred, mask_tokens_out, object_score_logits

    def upscale(
        self, src: torch.Tensor, high_res_features: list[torch.Tensor] | None
    ) -> torch.Tensor:
        """`[B, C, h, w]` image tokens after the transformer -> `[B, C/8, 4h, 4w]` upscaled
        embedding; high-resolution features (batch B or 1, broadcast) as in `forward`.

        Without autograd the sums and activations run in place and the layer norm in one
        pass over channels-last pixels; the values are the same up to float rounding."""
        if not self.use_high_res_features:
            return self.output_upscaling(src)
        if high_res_features is None:
            raise ValueError("this decoder needs high_res_features")
        deconv1, norm1, act1, deconv2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res_features
        if torch.is_grad_enabled():
            upscaled = act1(norm1(deconv1(src) + feat_s1))
            return act2(deconv2(upscaled) + feat_s0)
        upscaled = deconv1(src)
        upscaled += feat_s1
        if type(norm1) is LayerNorm2d:
            pixels = upscaled.permute(0, 2, 3, 1)
            normed = F.layer_norm(pixels, pixels.shape[-1:], norm1.weight, norm1.bias, norm1.eps)
            upscaled = normed.permute(0, 3, 1, 2)
        else:
            upscaled = norm1(upscaled)
        upscaled = activate_fresh(upscaled, act1)
        out = deconv2(upscaled)
        out += feat_s0
        return activate_fresh(out, act2)

    def _get_stability_scores(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """IoU of the masks thresholded at +delta and -delta: `[B, M, H, W]` -> `[B, M]`."""
        flat = mask_logits.flatten(-2)
        delta = self.dynamic_multimask_stability_delta
        area_inner = torch.sum(flat > delta, dim=-1).float()
        area_outer = torch.sum(flat > -delta, dim=-1).float()
        return torch.where(area_outer > 0, area_inner / area_outer, 1.0)

    def _dynamic_multimask_via_stability(
        self, all_mask_logits: torch.Tensor, all_iou_scores: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the single-mask output where it is stable, else the best multimask output."""
        multi_logits = all_mask_logits[:, 1:]
        multi_ious = all_iou_scores[:, 1:]
        best = torch.argmax(multi_ious, dim=-1)
        rows = torch.arange(multi_ious.size(0), device=all_iou_scores.device)
        best_logits = multi_logits[rows, best].unsqueeze(1)
        best_ious = multi_ious[rows, best].unsqueeze(1)

        single_logits = all_mask_logits[:, 0:1]
        single_ious = all_iou_scores[:, 0:1]
        stable = (
            self._get_stability_scores(single_logits) >= self.dynamic_multimask_stability_thresh
        )
        logits = torch.where(
            stable[..., None, None].expand_as(single_logits), single_logits, best_logits
        )
        ious = torch.where(stable.expand_as(single_ious), single_ious, best_ious)
        return logits, ious
