"""`Sam2Model`: SAM 2 with the same submodule names, parameters and tracking API as the official
`SAM2Base`, so official checkpoints load strictly and an official-style video driver works on it.

Conventions (as official): current-frame features are sequence-first `[HW, B, C]` lists, one per
feature level (high-res first); `output_dict` is
`{"cond_frame_outputs": {t: out}, "non_cond_frame_outputs": {t: out}}` where each `out` holds
`maskmem_features [B, mem_dim, h, w]`, `maskmem_pos_enc [[B, mem_dim, h, w]]`, `pred_masks`,
`obj_ptr [B, C]`, ... ; point inputs are `{"point_coords": [B, P, 2] float (x, y) pixels in the
S x S model input, "point_labels": [B, P] int32}`. B is the number of objects tracked together.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.init import trunc_normal_

from model._bf16 import Conv2d, Linear
from model._layers import MLP
from model.config import Sam2Config
from model.hiera import Hiera
from model.image_encoder import FpnNeck, ImageEncoder
from model.mask_decoder import MaskDecoder
from model.memo import LastCallMemo
from model.memory_attention import MemoryAttention
from model.memory_encoder import MemoryEncoder
from model.position_encoding import get_1d_sine_pe
from model.prompt_encoder import PromptEncoder
from model.transformer import TwoWayTransformer

# Mask logit given to objects judged absent (and to missing objects by drivers).
NO_OBJ_SCORE = -1024.0

FrameOutput = dict[str, Any]
OutputDict = dict[str, dict[int, FrameOutput]]
SamOutputs = tuple[
    torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor
]


def select_closest_cond_frames(
    frame_idx: int, cond_frame_outputs: dict[int, FrameOutput], max_cond_frame_num: int
) -> tuple[dict[int, FrameOutput], dict[int, FrameOutput]]:
    """Split conditioning frames into (selected, unselected): at most `max_cond_frame_num`
    (-1 = all), preferring the closest one before `frame_idx`, the closest at/after it, then
    the temporally nearest others."""
    if max_cond_frame_num == -1 or len(cond_frame_outputs) <= max_cond_frame_num:
        return cond_frame_outputs, {}
    if max_cond_frame_num < 2:
        raise ValueError("max_cond_frames_in_attn must be -1 or at least 2")
    selected: dict[int, FrameOutput] = {}
    before = max((t for t in cond_frame_outputs if t < frame_idx), default=None)
    if before is not None:
        selected[before] = cond_frame_outputs[before]
    after = min((t for t in cond_frame_outputs if t >= frame_idx), default=None)
    if after is not None:
        selected[after] = cond_frame_outputs[after]
    remaining = sorted(
        (t for t in cond_frame_outputs if t not in selected), key=lambda t: abs(t - frame_idx)
    )[: max_cond_frame_num - len(selected)]
    selected.update((t, cond_frame_outputs[t]) for t in remaining)
    unselected = {t: v for t, v in cond_frame_outputs.items() if t not in selected}
    return selected, unselected


class Sam2Model(nn.Module):
    """SAM 2 / 2.1 (image encoder, memory attention, memory encoder, SAM heads)."""

    no_obj_embed_spatial: nn.Parameter | None

    def __init__(self, config: Sam2Config) -> None:
        super().__init__()
        self.config = config
        trunk = Hiera(config.trunk)
        neck = FpnNeck(
            d_model=config.d_model,
            backbone_channel_list=config.trunk.backbone_channel_list,
            fpn_top_down_levels=config.fpn_top_down_levels,
            fpn_interp_mode=config.fpn_interp_mode,
        )
        # Part 1: image backbone
        self.image_encoder = ImageEncoder(trunk, neck, scalp=config.scalp)
        self.use_high_res_features_in_sam = config.use_high_res_features_in_sam
        self.num_feature_levels = 3 if config.use_high_res_features_in_sam else 1
        self.use_obj_ptrs_in_encoder = config.use_obj_ptrs_in_encoder
        self.max_obj_ptrs_in_encoder = config.max_obj_ptrs_in_encoder
        if config.use_obj_ptrs_in_encoder:
            # turns a full-resolution mask prompt into stride-4 logits for the SAM decoder
            self.mask_downsample = Conv2d(1, 1, kernel_size=4, stride=4)
        self.add_tpos_enc_to_obj_ptrs = config.add_tpos_enc_to_obj_ptrs
        self.proj_tpos_enc_in_obj_ptrs = config.proj_tpos_enc_in_obj_ptrs
        self.use_signed_tpos_enc_to_obj_ptrs = config.use_signed_tpos_enc_to_obj_ptrs
        self.only_obj_ptrs_in_the_past_for_eval = config.only_obj_ptrs_in_the_past_for_eval

        # Part 2: memory attention
        self.memory_attention = MemoryAttention(
            d_model=config.d_model,
            mem_dim=config.mem_dim,
            num_layers=config.memory_attention_layers,
            dim_feedforward=config.memory_attention_ffn_dim,
            dropout=config.memory_attention_dropout,
            rope_theta=config.rope_theta,
        )
        self.hidden_dim = config.d_model

        # Part 3: memory encoder
        self.memory_encoder = MemoryEncoder(out_dim=config.mem_dim, in_dim=config.d_model)
        self.mem_dim = config.mem_dim
        self.num_maskmem = config.num_maskmem
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(config.num_maskmem, 1, 1, self.mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, self.hidden_dim))
        trunc_normal_(self.maskmem_tpos_enc, std=0.02)
        trunc_normal_(self.no_mem_embed, std=0.02)
        trunc_normal_(self.no_mem_pos_enc, std=0.02)
        self.directly_add_no_mem_embed = config.directly_add_no_mem_embed
        self.sigmoid_scale_for_mem_enc = config.sigmoid_scale_for_mem_enc
        self.sigmoid_bias_for_mem_enc = config.sigmoid_bias_for_mem_enc
        self.binarize_mask_from_pts_for_mem_enc = config.binarize_mask_from_pts_for_mem_enc
        self.non_overlap_masks_for_mem_enc = config.non_overlap_masks_for_mem_enc
        self.memory_temporal_stride_for_eval = config.memory_temporal_stride_for_eval
        self.use_mask_input_as_output_without_sam = config.use_mask_input_as_output_without_sam
        self.multimask_output_in_sam = config.multimask_output_in_sam
        self.multimask_min_pt_num = config.multimask_min_pt_num
        self.multimask_max_pt_num = config.multimask_max_pt_num
        self.multimask_output_for_tracking = config.multimask_output_for_tracking
        self.use_multimask_token_for_obj_ptr = config.use_multimask_token_for_obj_ptr
        self.iou_prediction_use_sigmoid = config.iou_prediction_use_sigmoid
        self.add_all_frames_to_correct_as_cond = config.add_all_frames_to_correct_as_cond
        # the last memory attention in inference (None: off); see model.memo
        self.memory_memo: LastCallMemo | None = LastCallMemo()

        # Part 4: SAM prompt encoder and mask decoder
        self.image_size = config.image_size
        self.backbone_stride = config.backbone_stride
        self.pred_obj_scores = config.pred_obj_scores
        self.pred_obj_scores_mlp = config.pred_obj_scores_mlp
        self.fixed_no_obj_ptr = config.fixed_no_obj_ptr
        self.soft_no_obj_ptr = config.soft_no_obj_ptr
        if config.pred_obj_scores and config.use_obj_ptrs_in_encoder:
            self.no_obj_ptr = nn.Parameter(torch.zeros(1, self.hidden_dim))
            trunc_normal_(self.no_obj_ptr, std=0.02)
        self.use_mlp_for_obj_ptr_proj = config.use_mlp_for_obj_ptr_proj
        if config.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, self.mem_dim))
            trunc_normal_(self.no_obj_embed_spatial, std=0.02)
        else:
            self.register_parameter("no_obj_embed_spatial", None)
        self._build_sam_heads()
        self.max_cond_frames_in_attn = config.max_cond_frames_in_attn

    def _build_sam_heads(self) -> None:
        config = self.config
        self.sam_prompt_embed_dim = self.hidden_dim
        self.sam_image_embedding_size = self.image_size // self.backbone_stride
        grid = self.sam_image_embedding_size
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=self.sam_prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(self.image_size, self.image_size),
            mask_in_chans=16,
        )
        self.sam_mask_decoder = MaskDecoder(
            transformer_dim=self.sam_prompt_embed_dim,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=self.sam_prompt_embed_dim, num_heads=8, mlp_dim=2048
            ),
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
            use_high_res_features=self.use_high_res_features_in_sam,
            iou_prediction_use_sigmoid=self.iou_prediction_use_sigmoid,
            dynamic_multimask_via_stability=config.dynamic_multimask_via_stability,
            dynamic_multimask_stability_delta=config.dynamic_multimask_stability_delta,
            dynamic_multimask_stability_thresh=config.dynamic_multimask_stability_thresh,
            pred_obj_scores=self.pred_obj_scores,
            pred_obj_scores_mlp=self.pred_obj_scores_mlp,
            use_multimask_token_for_obj_ptr=self.use_multimask_token_for_obj_ptr,
        )
        self.obj_ptr_proj: nn.Module
        if not self.use_obj_ptrs_in_encoder:
            self.obj_ptr_proj = nn.Identity()
        elif self.use_mlp_for_obj_ptr_proj:
            self.obj_ptr_proj = MLP(self.hidden_dim, self.hidden_dim, self.hidden_dim, 3)
        else:
            self.obj_ptr_proj = Linear(self.hidden_dim, self.hidden_dim)
        self.obj_ptr_tpos_proj: nn.Module = (
            Linear(self.hidden_dim, self.mem_dim)
            if self.proj_tpos_enc_in_obj_ptrs
            else nn.Identity()
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "Sam2Model has no forward(); use forward_image / track_step (or a predictor)"
        )

    # ------------------------------------------------------------------ image features

    def forward_image(self, img_batch: torch.Tensor) -> dict[str, Any]:
        """Backbone features of `[B, 3, S, S]` normalised images.

        Returns `{"vision_features": [B, C, S/16, S/16], "vision_pos_enc": [3 x [B, C, ., .]],
        "backbone_fpn": [[B, C/8, S/4, S/4], [B, C/4, S/8, S/8], [B, C, S/16, S/16]]}`; the two
        high-res levels already went through the decoder's conv_s0 / conv_s1 (once per frame).
        """
        backbone_out = self.image_encoder(img_batch)
        if self.use_high_res_features_in_sam:
            fpn = backbone_out["backbone_fpn"]
            fpn[0] = self.sam_mask_decoder.conv_s0(fpn[0])
            fpn[1] = self.sam_mask_decoder.conv_s1(fpn[1])
        return backbone_out

    def _prepare_backbone_features(
        self, backbone_out: dict[str, Any]
    ) -> tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
        """Flatten the last `num_feature_levels` levels to sequence-first `[HW, B, C]`.

        Returns `(backbone_out copy, vision_feats, vision_pos_embeds, feat_sizes [(H, W)])`.
        """
        backbone_out = backbone_out.copy()
        fpn, pos = backbone_out["backbone_fpn"], backbone_out["vision_pos_enc"]
        if len(fpn) != len(pos) or len(fpn) < self.num_feature_levels:
            raise ValueError("backbone_out has too few or mismatched feature levels")
        feature_maps = fpn[-self.num_feature_levels :]
        pos_maps = pos[-self.num_feature_levels :]
        feat_sizes = [(x.shape[-2], x.shape[-1]) for x in pos_maps]
        vision_feats = [x.flatten(2).permute(2, 0, 1) for x in feature_maps]
        vision_pos_embeds = [x.flatten(2).permute(2, 0, 1) for x in pos_maps]
        return backbone_out, vision_feats, vision_pos_embeds, feat_sizes

    # ------------------------------------------------------------------ SAM heads

    def _forward_sam_heads(
        self,
        backbone_features: torch.Tensor,
        point_inputs: dict[str, torch.Tensor] | None = None,
        mask_inputs: torch.Tensor | None = None,
        high_res_features: list[torch.Tensor] | None = None,
        multimask_output: bool = False,
        *,
        all_high_res: bool = True,
    ) -> SamOutputs:
        """Prompt encoder + mask decoder on `[B, C, S/16, S/16]` features.

        mask_inputs: `[B, 1, H, W]` logits (resized to S/4 with antialiasing if needed).
        high_res_features: `[[B, C/8, S/4, S/4], [B, C/4, S/8, S/8]]` or None.
        Returns `(low_res_multimasks [B, M, S/4, S/4], high_res_multimasks [B, M, S, S],
        ious [B, M], low_res_masks [B, 1, S/4, S/4], high_res_masks [B, 1, S, S],
        obj_ptr [B, C], object_score_logits [B, 1])`, M = 3 with multimask output else 1; the
        single outputs are the best (highest predicted IoU) of the M. Masks are fp32 logits;
        objects judged absent get NO_OBJ_SCORE everywhere. With `all_high_res=False` (tracking
        in inference, which reads only the chosen mask) only that mask is upsampled, and it
        stands in for `high_res_multimasks` too (`[B, 1, S, S]`).
        """
        batch = backbone_features.size(0)
        device = backbone_features.device
        grid = self.sam_image_embedding_size
        if backbone_features.shape[1:] != (self.sam_prompt_embed_dim, grid, grid):
            raise ValueError(
                f"backbone_features must be [B, {self.sam_prompt_embed_dim}, {grid}, {grid}], "
                f"got {list(backbone_features.shape)}"
            )
        if point_inputs is not None:
            coords, labels = point_inputs["point_coords"], point_inputs["point_labels"]
            if coords.size(0) != batch or labels.size(0) != batch:
                raise ValueError("point_inputs batch size differs from the features'")
        else:
            # one padding point (label -1) when there are no clicks
            coords = torch.zeros(batch, 1, 2, device=device)
            labels = -torch.ones(batch, 1, dtype=torch.int32, device=device)

        mask_prompt: torch.Tensor | None = None
        if mask_inputs is not None:
            if mask_inputs.dim() != 4 or mask_inputs.shape[:2] != (batch, 1):
                raise ValueError("mask_inputs must be [B, 1, H, W]")
            mask_prompt = mask_inputs
            if mask_inputs.shape[-2:] != self.sam_prompt_encoder.mask_input_size:
                mask_prompt = F.interpolate(
                    mask_inputs.float(),
                    size=self.sam_prompt_encoder.mask_input_size,
                    align_corners=False,
                    mode="bilinear",
                    antialias=True,
                )

        sparse, dense = self.sam_prompt_encoder(
            points=(coords, labels), boxes=None, masks=mask_prompt
        )
        low_res_multimasks, ious, sam_output_tokens, object_score_logits = self.sam_mask_decoder(
            image_embeddings=backbone_features,
            image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=False,
            high_res_features=high_res_features,
        )
        is_obj_appearing = object_score_logits > 0
        if self.pred_obj_scores:
            # a hard decision: masks of absent objects are wiped, as their memories will be
            low_res_multimasks = torch.where(
                is_obj_appearing[:, None, None], low_res_multimasks, NO_OBJ_SCORE
            )
        low_res_multimasks = low_res_multimasks.float()  # bf16 under autocast

        sam_output_token = sam_output_tokens[:, 0]
        if multimask_output:
            best = torch.argmax(ious, dim=-1)
            rows = torch.arange(batch, device=device)
            low_res_masks = low_res_multimasks[rows, best].unsqueeze(1)
            if sam_output_tokens.size(1) > 1:
                sam_output_token = sam_output_tokens[rows, best]
        else:
            low_res_masks = low_res_multimasks
        if all_high_res or not multimask_output:
            high_res_multimasks = self._upsample(low_res_multimasks)
            high_res_masks = (
                high_res_multimasks[rows, best].unsqueeze(1)
                if multimask_output
                else high_res_multimasks
            )
        else:
            # bilinear upsampling works channel by channel: the chosen mask alone gives its
            # values (up to rounding; 3x less work, no slow pass over a channels-last view)
            high_res_masks = self._upsample(low_res_masks)
            high_res_multimasks = high_res_masks

        obj_ptr = self.obj_ptr_proj(sam_output_token)
        if self.pred_obj_scores:
            appearing = (
                object_score_logits.sigmoid() if self.soft_no_obj_ptr else is_obj_appearing.float()
            )
            obj_ptr = self._mix_no_obj_ptr(obj_ptr, appearing)
        return (
            low_res_multimasks,
            high_res_multimasks,
            ious,
            low_res_masks,
            high_res_masks,
            obj_ptr,
            object_score_logits,
        )

    def _upsample(self, low_res: torch.Tensor) -> torch.Tensor:
        """`[B, M, S/4, S/4]` logits -> `[B, M, S, S]` (bilinear, as Meta's)."""
        return F.interpolate(
            low_res, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        )

    def _mix_no_obj_ptr(self, obj_ptr: torch.Tensor, appearing: torch.Tensor) -> torch.Tensor:
        """Blend in the learned no-object pointer by `1 - appearing` (`[B, 1]` in [0, 1])."""
        if self.fixed_no_obj_ptr:
            obj_ptr = appearing * obj_ptr
        return obj_ptr + (1 - appearing) * self.no_obj_ptr

    def _use_mask_as_output(
        self,
        backbone_features: torch.Tensor,
        high_res_features: list[torch.Tensor] | None,
        mask_inputs: torch.Tensor,
    ) -> SamOutputs:
        """Treat a `[B, 1, S, S]` binary mask prompt as the output (logits +/-10); the object
        pointer still comes from the SAM decoder fed with the mask. Same outputs as
        `_forward_sam_heads` (M = 1, IoU 1, object score +/-10 from mask emptiness)."""
        out_scale, out_bias = 20.0, -10.0
        mask_float = mask_inputs.float()
        high_res_masks = mask_float * out_scale + out_bias
        low_res_masks = F.interpolate(
            high_res_masks,
            size=(high_res_masks.size(-2) // 4, high_res_masks.size(-1) // 4),
            align_corners=False,
            mode="bilinear",
            antialias=True,
        )
        ious = mask_inputs.new_ones(mask_inputs.size(0), 1).float()
        if not self.use_obj_ptrs_in_encoder:
            obj_ptr = torch.zeros(mask_inputs.size(0), self.hidden_dim, device=mask_inputs.device)
        else:
            obj_ptr = self._forward_sam_heads(
                backbone_features=backbone_features,
                mask_inputs=self.mask_downsample(mask_float),
                high_res_features=high_res_features,
            )[5]
        # presence follows the given mask, not the decoder's object score
        appearing = torch.any(mask_inputs.flatten(1).float() > 0.0, dim=1)[..., None].float()
        object_score_logits = out_scale * appearing + out_bias
        if self.pred_obj_scores:
            obj_ptr = self._mix_no_obj_ptr(obj_ptr, appearing)
        return (
            low_res_masks,
            high_res_masks,
            ious,
            low_res_masks,
            high_res_masks,
            obj_ptr,
            object_score_logits,
        )

    # ------------------------------------------------------------------ memory

    def _prepare_memory_conditioned_features(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        current_vision_feats: list[torch.Tensor],
        current_vision_pos_embeds: list[torch.Tensor],
        feat_sizes: list[tuple[int, int]],
        output_dict: OutputDict,
        num_frames: int,
        track_in_reverse: bool = False,
    ) -> torch.Tensor:
        """Fuse the current frame's `[HW, B, C]` features with the memory bank -> `[B, C, H, W]`.

        Memories: all (or the closest `max_cond_frames_in_attn`) conditioning frames at temporal
        slot 0, plus the `num_maskmem - 1` previous frames in tracking order; object pointers of
        up to `max_obj_ptrs_in_encoder` frames, each split into `C / mem_dim` tokens.
        Initial conditioning frames use no memory (`no_mem_embed`).
        """
        batch = current_vision_feats[-1].size(1)
        channels = self.hidden_dim
        height, width = feat_sizes[-1]
        device = current_vision_feats[-1].device
        if self.num_maskmem == 0:  # SAM on single images: no memory at all
            return current_vision_feats[-1].permute(1, 2, 0).view(batch, channels, height, width)

        num_obj_ptr_tokens = 0
        tpos_sign = -1 if track_in_reverse else 1
        if not is_init_cond_frame:
            memories: list[torch.Tensor] = []
            memory_pos: list[torch.Tensor] = []
            cond_outputs = output_dict["cond_frame_outputs"]
            if not cond_outputs:
                raise ValueError("tracking a frame needs at least one conditioning frame")
            selected_cond, unselected_cond = select_closest_cond_frames(
                frame_idx, cond_outputs, self.max_cond_frames_in_attn
            )
            slots: list[tuple[int, FrameOutput | None]] = [
                (0, out) for out in selected_cond.values()
            ]
            stride = 1 if self.training else self.memory_temporal_stride_for_eval
            for t_pos in range(1, self.num_maskmem):
                prev = self._memory_frame_index(
                    frame_idx, self.num_maskmem - t_pos, stride, track_in_reverse
                )
                out = output_dict["non_cond_frame_outputs"].get(prev)
                if out is None:
                    # an unselected conditioning frame in the window still serves as memory
                    out = unselected_cond.get(prev)
                slots.append((t_pos, out))
            for t_pos, out in slots:
                if out is None:
                    continue  # missing frames are skipped, not padded
                feats = out["maskmem_features"].to(device, non_blocking=True)
                memories.append(feats.flatten(2).permute(2, 0, 1))
                pos = out["maskmem_pos_enc"][-1].to(device).flatten(2).permute(2, 0, 1)
                memory_pos.append(pos + self.maskmem_tpos_enc[self.num_maskmem - t_pos - 1])

            if self.use_obj_ptrs_in_encoder:
                max_ptrs = min(num_frames, self.max_obj_ptrs_in_encoder)
                if not self.training and self.only_obj_ptrs_in_the_past_for_eval:
                    ptr_cond = {
                        t: out
                        for t, out in selected_cond.items()
                        if (t >= frame_idx if track_in_reverse else t <= frame_idx)
                    }
                else:
                    ptr_cond = selected_cond
                pos_and_ptrs: list[tuple[int, torch.Tensor]] = [
                    (
                        (frame_idx - t) * tpos_sign
                        if self.use_signed_tpos_enc_to_obj_ptrs
                        else abs(frame_idx - t),
                        out["obj_ptr"],
                    )
                    for t, out in ptr_cond.items()
                ]
                for t_diff in range(1, max_ptrs):
                    t = frame_idx + t_diff if track_in_reverse else frame_idx - t_diff
                    if t < 0 or (num_frames is not None and t >= num_frames):
                        break
                    out = output_dict["non_cond_frame_outputs"].get(t, unselected_cond.get(t))
                    if out is not None:
                        pos_and_ptrs.append((t_diff, out["obj_ptr"]))
                if pos_and_ptrs:
                    ptrs, ptr_pos = self._object_pointer_tokens(
                        pos_and_ptrs, max_ptrs, batch, device
                    )
                    memories.append(ptrs)
                    memory_pos.append(ptr_pos)
                    num_obj_ptr_tokens = ptrs.shape[0]
        else:
            if self.directly_add_no_mem_embed:
                feat = current_vision_feats[-1] + self.no_mem_embed
                return feat.permute(1, 2, 0).view(batch, channels, height, width)
            # a dummy token, so the memory attention never sees an empty memory
            memories = [self.no_mem_embed.expand(1, batch, self.mem_dim)]
            memory_pos = [self.no_mem_pos_enc.expand(1, batch, self.mem_dim)]

        memory = self._uniform_memory_dtype(torch.cat(memories, dim=0))
        memory_pos_embed = self._uniform_memory_dtype(torch.cat(memory_pos, dim=0))
        fused = self._attend_memory(
            current_vision_feats,
            current_vision_pos_embeds,
            memory,
            memory_pos_embed,
            num_obj_ptr_tokens,
        )
        return fused.permute(1, 2, 0).view(batch, channels, height, width)

    def _attend_memory(
        self,
        curr: list[torch.Tensor],
        curr_pos: list[torch.Tensor],
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int,
    ) -> torch.Tensor:
        """`memory_attention` -> `[HW, B, C]`; in inference, the last result again when the
        inputs are equal (`memory_memo`: a second click on a tracked frame)."""
        memo = self.memory_memo if not self.training and not torch.is_grad_enabled() else None
        key: list[torch.Tensor | int] = [*curr, *curr_pos, memory, memory_pos, num_obj_ptr_tokens]
        fused = memo.get(key) if memo is not None else None
        if fused is None:
            fused = self.memory_attention(
                curr=curr,
                curr_pos=curr_pos,
                memory=memory,
                memory_pos=memory_pos,
                num_obj_ptr_tokens=num_obj_ptr_tokens,
            )
            if memo is not None:
                memo.put(key, fused)
        return fused

    @staticmethod
    def _memory_frame_index(frame_idx: int, t_rel: int, stride: int, reverse: bool) -> int:
        """Frame `t_rel` steps before `frame_idx` in tracking order; beyond the previous frame,
        frames are taken on the grid of every `stride`-th frame."""
        if t_rel == 1:
            return frame_idx + 1 if reverse else frame_idx - 1
        if not reverse:
            nearest = ((frame_idx - 2) // stride) * stride
            return nearest - (t_rel - 2) * stride
        nearest = -(-(frame_idx + 2) // stride) * stride
        return nearest + (t_rel - 2) * stride

    def _object_pointer_tokens(
        self,
        pos_and_ptrs: list[tuple[int, torch.Tensor]],
        max_ptrs: int,
        batch: int,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack pointers `[B, C]` into memory tokens `[P * C/mem_dim, B, mem_dim]` and their
        temporal encodings (sine of the normalised signed distance, projected to mem_dim)."""
        channels = self.hidden_dim
        pos_list = [p for p, _ in pos_and_ptrs]
        ptrs = torch.stack([ptr for _, ptr in pos_and_ptrs], dim=0)  # [P, B, C]
        if self.add_tpos_enc_to_obj_ptrs:
            t_diff_max = max_ptrs - 1
            tpos_dim = channels if self.proj_tpos_enc_in_obj_ptrs else self.mem_dim
            obj_pos = torch.tensor(pos_list).to(device=device, non_blocking=True)
            obj_pos = get_1d_sine_pe(obj_pos / t_diff_max, dim=tpos_dim)
            obj_pos = self.obj_ptr_tpos_proj(obj_pos)
            obj_pos = obj_pos.unsqueeze(1).expand(-1, batch, self.mem_dim)
        else:
            obj_pos = ptrs.new_zeros(len(pos_list), batch, self.mem_dim)
        if self.mem_dim < channels:
            split = channels // self.mem_dim
            ptrs = ptrs.reshape(-1, batch, split, self.mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            obj_pos = obj_pos.repeat_interleave(split, dim=0)
        return ptrs, obj_pos

    def _uniform_memory_dtype(self, memory: torch.Tensor) -> torch.Tensor:
        """Outside autocast, cast memories stored in a lower precision (e.g. bf16) back to the
        weights' dtype; the official code crashes there ("mat1 and mat2 must have the same
        dtype"). Under autocast, or when dtypes agree, this is a no-op."""
        weight_dtype = self.no_mem_embed.dtype
        if memory.dtype == weight_dtype or torch.is_autocast_enabled(memory.device.type):
            return memory
        return memory.to(weight_dtype)

    def _encode_new_memory(
        self,
        current_vision_feats: list[torch.Tensor],
        feat_sizes: list[tuple[int, int]],
        pred_masks_high_res: torch.Tensor,
        object_score_logits: torch.Tensor,
        is_mask_from_pts: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Encode the frame's un-conditioned stride-16 features and its `[B, 1, S, S]` mask
        logits into `(maskmem_features [B, mem_dim, h, w], maskmem_pos_enc [[B, mem_dim, h, w]])`.
        """
        batch = current_vision_feats[-1].size(1)
        height, width = feat_sizes[-1]
        pix_feat = (
            current_vision_feats[-1].permute(1, 2, 0).view(batch, self.hidden_dim, height, width)
        )
        if self.non_overlap_masks_for_mem_enc and not self.training:
            pred_masks_high_res = self._apply_non_overlapping_constraints(pred_masks_high_res)
        if self.binarize_mask_from_pts_for_mem_enc and is_mask_from_pts and not self.training:
            # clicked frames: encode exactly the mask the user saw
            mask_for_mem = (pred_masks_high_res > 0).float()
        else:
            mask_for_mem = torch.sigmoid(pred_masks_high_res)
        if self.sigmoid_scale_for_mem_enc != 1.0:
            mask_for_mem = mask_for_mem * self.sigmoid_scale_for_mem_enc
        if self.sigmoid_bias_for_mem_enc != 0.0:
            mask_for_mem = mask_for_mem + self.sigmoid_bias_for_mem_enc
        encoded = self.memory_encoder(pix_feat, mask_for_mem, skip_mask_sigmoid=True)
        maskmem_features = encoded["vision_features"]
        maskmem_pos_enc = encoded["vision_pos_enc"]
        if self.no_obj_embed_spatial is not None:
            absent = 1 - (object_score_logits > 0).float()  # [B, 1]
            maskmem_features = maskmem_features + absent[
                ..., None, None
            ] * self.no_obj_embed_spatial[..., None, None].expand(*maskmem_features.shape)
        return maskmem_features, maskmem_pos_enc

    # ------------------------------------------------------------------ tracking

    def _track_step(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        current_vision_feats: list[torch.Tensor],
        current_vision_pos_embeds: list[torch.Tensor],
        feat_sizes: list[tuple[int, int]],
        point_inputs: dict[str, torch.Tensor] | None,
        mask_inputs: torch.Tensor | None,
        output_dict: OutputDict,
        num_frames: int,
        track_in_reverse: bool,
        prev_sam_mask_logits: torch.Tensor | None,
        all_high_res: bool = True,
    ) -> tuple[FrameOutput, SamOutputs, list[torch.Tensor] | None, torch.Tensor]:
        current_out: FrameOutput = {"point_inputs": point_inputs, "mask_inputs": mask_inputs}
        high_res_features: list[torch.Tensor] | None = None
        if len(current_vision_feats) > 1:
            high_res_features = [
                x.permute(1, 2, 0).view(x.size(1), x.size(2), *size)
                for x, size in zip(current_vision_feats[:-1], feat_sizes[:-1])
            ]
        if mask_inputs is not None and self.use_mask_input_as_output_without_sam:
            pix_feat = current_vision_feats[-1].permute(1, 2, 0)
            pix_feat = pix_feat.view(-1, self.hidden_dim, *feat_sizes[-1])
            sam_outputs = self._use_mask_as_output(pix_feat, high_res_features, mask_inputs)
        else:
            pix_feat = self._prepare_memory_conditioned_features(
                frame_idx=frame_idx,
                is_init_cond_frame=is_init_cond_frame,
                current_vision_feats=current_vision_feats[-1:],
                current_vision_pos_embeds=current_vision_pos_embeds[-1:],
                feat_sizes=feat_sizes[-1:],
                output_dict=output_dict,
                num_frames=num_frames,
                track_in_reverse=track_in_reverse,
            )
            if prev_sam_mask_logits is not None:
                # earlier logits on this frame go in as the dense prompt with the new clicks
                if point_inputs is None or mask_inputs is not None:
                    raise ValueError("prev_sam_mask_logits needs point_inputs and no mask_inputs")
                mask_inputs = prev_sam_mask_logits
            sam_outputs = self._forward_sam_heads(
                backbone_features=pix_feat,
                point_inputs=point_inputs,
                mask_inputs=mask_inputs,
                high_res_features=high_res_features,
                multimask_output=self._use_multimask(is_init_cond_frame, point_inputs),
                all_high_res=all_high_res,
            )
        return current_out, sam_outputs, high_res_features, pix_feat

    def _encode_memory_in_output(
        self,
        current_vision_feats: list[torch.Tensor],
        feat_sizes: list[tuple[int, int]],
        point_inputs: dict[str, torch.Tensor] | None,
        run_mem_encoder: bool,
        high_res_masks: torch.Tensor,
        object_score_logits: torch.Tensor,
        current_out: FrameOutput,
    ) -> None:
        if run_mem_encoder and self.num_maskmem > 0:
            features, pos = self._encode_new_memory(
                current_vision_feats=current_vision_feats,
                feat_sizes=feat_sizes,
                pred_masks_high_res=high_res_masks,
                object_score_logits=object_score_logits,
                is_mask_from_pts=point_inputs is not None,
            )
            current_out["maskmem_features"] = features
            current_out["maskmem_pos_enc"] = pos
        else:
            current_out["maskmem_features"] = None
            current_out["maskmem_pos_enc"] = None

    def track_step(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        current_vision_feats: list[torch.Tensor],
        current_vision_pos_embeds: list[torch.Tensor],
        feat_sizes: list[tuple[int, int]],
        point_inputs: dict[str, torch.Tensor] | None,
        mask_inputs: torch.Tensor | None,
        output_dict: OutputDict,
        num_frames: int,
        track_in_reverse: bool = False,
        run_mem_encoder: bool = True,
        prev_sam_mask_logits: torch.Tensor | None = None,
    ) -> FrameOutput:
        """One tracking step for B objects on one frame.

        Inputs come from `_prepare_backbone_features` (features expanded to B if needed).
        mask_inputs: `[B, 1, S, S]` or None; prev_sam_mask_logits: `[B, 1, S/4, S/4]` or None.
        Returns a dict with `point_inputs`, `mask_inputs`, `pred_masks [B, 1, S/4, S/4]`,
        `pred_masks_high_res [B, 1, S, S]`, `obj_ptr [B, C]`, `object_score_logits [B, 1]`
        (eval only), `maskmem_features [B, mem_dim, S/16, S/16] | None`, `maskmem_pos_enc`.
        """
        current_out, sam_outputs, _, _ = self._track_step(
            frame_idx,
            is_init_cond_frame,
            current_vision_feats,
            current_vision_pos_embeds,
            feat_sizes,
            point_inputs,
            mask_inputs,
            output_dict,
            num_frames,
            track_in_reverse,
            prev_sam_mask_logits,
            all_high_res=self.training,  # the multimask outputs are only trained on
        )
        _, _, ious, low_res_masks, high_res_masks, obj_ptr, object_score_logits = sam_outputs
        current_out["iou_predictions"] = ious  # [B, M]; read by selective memory policies
        current_out["pred_masks"] = low_res_masks
        current_out["pred_masks_high_res"] = high_res_masks
        current_out["obj_ptr"] = obj_ptr
        if not self.training:
            current_out["object_score_logits"] = object_score_logits
        self._encode_memory_in_output(
            current_vision_feats,
            feat_sizes,
            point_inputs,
            run_mem_encoder,
            high_res_masks,
            object_score_logits,
            current_out,
        )
        return current_out

    def _use_multimask(
        self, is_init_cond_frame: bool, point_inputs: dict[str, torch.Tensor] | None
    ) -> bool:
        """Three candidate masks for <= 1 click (or plain tracking with the 2.1 configs)."""
        num_pts = 0 if point_inputs is None else point_inputs["point_labels"].size(1)
        return bool(
            self.multimask_output_in_sam
            and (is_init_cond_frame or self.multimask_output_for_tracking)
            and self.multimask_min_pt_num <= num_pts <= self.multimask_max_pt_num
        )

    def _apply_non_overlapping_constraints(self, pred_masks: torch.Tensor) -> torch.Tensor:
        """`[B, 1, H, W]` logits: where an object is not the highest-scoring one, clamp its
        logits to at most -10 (B objects of the same frame)."""
        batch = pred_masks.size(0)
        if batch == 1:
            return pred_masks
        winner = torch.argmax(pred_masks, dim=0, keepdim=True)
        index = torch.arange(batch, device=pred_masks.device)[:, None, None, None]
        return torch.where(winner == index, pred_masks, torch.clamp(pred_masks, max=-10.0))
