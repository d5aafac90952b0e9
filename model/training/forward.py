"""The training forward pass of one clip (Meta's `SAM2Train.forward_tracking`), driven through the
`Sam2Model` pieces: backbone on all frames, init conditioning frames first, then the others in
order; frames chosen for correction get iterative clicks from the error region, with the previous
low-res logits fed back as the mask prompt, and become conditioning frames."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model.sam2_base import OutputDict, Sam2Model
from model.training.clips import ClipSample
from model.training.losses import StepPrediction, clip_loss
from model.training.prompts import (
    PromptPlan,
    concat_points,
    initial_point_inputs,
    sample_error_click,
)

Features = tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]


def frame_features(model: Sam2Model, backbone_out: dict, frame: int, batch: int) -> Features:
    """Frame `frame`'s backbone features for `batch` objects: sequence-first `[HW, N, C]` lists."""
    expanded = {
        "backbone_fpn": [
            x[frame : frame + 1].expand(batch, -1, -1, -1) for x in backbone_out["backbone_fpn"]
        ],
        "vision_pos_enc": [
            x[frame : frame + 1].expand(batch, -1, -1, -1) for x in backbone_out["vision_pos_enc"]
        ],
    }
    _, feats, pos, sizes = model._prepare_backbone_features(expanded)
    return feats, pos, sizes


def forward_clip(
    model: Sam2Model,
    sample: ClipSample,
    plan: PromptPlan,
    *,
    correction_clicks: int,
    prob_click_from_gt: float,
    add_corrected_frames_as_cond: bool,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> list[list[StepPrediction]]:
    """Track the sample's N objects through its T frames; returns, per frame, the predictions of
    every step (the first one, then one per correction click)."""
    device = model.device
    images = sample.images.to(device)
    gt = sample.gt_masks.to(device)  # [T, N, S, S]
    num_frames, batch = gt.shape[0], gt.shape[1]
    backbone_out = model.forward_image(images)
    output_dict: OutputDict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    predictions: dict[int, list[StepPrediction]] = {}
    for t in plan.processing_order(num_frames):
        feats, pos, sizes = frame_features(model, backbone_out, t, batch)
        is_init = t in plan.init_cond_frames
        point_inputs = mask_inputs = None
        if is_init and plan.use_points:
            point_inputs = initial_point_inputs(gt[t], t in plan.box_frames, generator)
        elif is_init:
            mask_inputs = gt[t][:, None].float()
        current_out, sam_outputs, high_res_features, pix_feat = model._track_step(
            t,
            is_init,
            feats,
            pos,
            sizes,
            point_inputs,
            mask_inputs,
            output_dict,
            num_frames,
            False,
            None,
        )
        multimasks, ious, object_scores = sam_outputs[1], sam_outputs[2], sam_outputs[6]
        low_res, high_res, obj_ptr = sam_outputs[3], sam_outputs[4], sam_outputs[5]
        steps = [StepPrediction(multimasks, ious, object_scores)]
        corrected = t in plan.correction_frames
        if corrected:
            for _ in range(correction_clicks):
                from_gt = bool(rng.random() < prob_click_from_gt)
                coords, labels = sample_error_click(
                    gt[t], None if from_gt else high_res[:, 0] > 0, generator
                )
                point_inputs = concat_points(point_inputs, coords, labels)
                outputs = model._forward_sam_heads(
                    backbone_features=pix_feat,
                    point_inputs=point_inputs,
                    mask_inputs=low_res,
                    high_res_features=high_res_features,
                    multimask_output=model._use_multimask(is_init, point_inputs),
                )
                low_res, high_res, obj_ptr, object_scores = (
                    outputs[3],
                    outputs[4],
                    outputs[5],
                    outputs[6],
                )
                steps.append(StepPrediction(outputs[1], outputs[2], object_scores))
        current_out["pred_masks"] = low_res
        current_out["pred_masks_high_res"] = high_res
        current_out["obj_ptr"] = obj_ptr
        # a one-frame sample (an image) never reads a memory: no memory encoder pass
        model._encode_memory_in_output(
            feats, sizes, point_inputs, num_frames > 1, high_res, object_scores, current_out
        )
        as_cond = is_init or (add_corrected_frames_as_cond and corrected)
        output_dict["cond_frame_outputs" if as_cond else "non_cond_frame_outputs"][t] = current_out
        predictions[t] = steps
    return [predictions[t] for t in range(num_frames)]


class ClipLoss(nn.Module):
    """`Sam2Model` wrapper whose `forward` is one clip's loss, so that DDP can hook it.

    `self.model` is the wrapped model: its state_dict is the checkpoint's `"model"`.
    """

    def __init__(self, model: Sam2Model) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        sample: ClipSample,
        plan: PromptPlan,
        *,
        num_objects: float,
        correction_clicks: int,
        prob_click_from_gt: float,
        add_corrected_frames_as_cond: bool,
        rng: np.random.Generator,
        generator: torch.Generator,
        iou_loss: str = "l1",
    ) -> dict[str, torch.Tensor]:
        frames = forward_clip(
            self.model,
            sample,
            plan,
            correction_clicks=correction_clicks,
            prob_click_from_gt=prob_click_from_gt,
            add_corrected_frames_as_cond=add_corrected_frames_as_cond,
            rng=rng,
            generator=generator,
        )
        parts = clip_loss(frames, sample.gt_masks.to(self.model.device), num_objects, iou_loss)
        if not parts["total"].requires_grad:
            # every frame was a GT-mask prompt (a clip of init frames only): a zero loss still
            # joins the graph, so backward (and DDP's gradient reduction) runs on every rank
            anchor = next(p for p in self.model.parameters() if p.requires_grad)
            parts["total"] = parts["total"] + 0.0 * anchor.sum()
        return parts
