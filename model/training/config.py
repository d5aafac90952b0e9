"""`TrainConfig`: SAM 2 fine-tuning hyper-parameters (defaults: Meta's MOSE fine-tuning recipe,
`configs/sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `batch_size` is global: DDP ranks split it (it must divide evenly)."""

    steps: int
    batch_size: int = 1  # clips per optimiser step, GLOBAL (split across DDP ranks)
    num_frames: int = 8  # frames sampled per clip (consecutive)
    max_objects: int = 3
    base_lr: float = 5e-6
    vision_lr: float = 3e-6  # image_encoder.*
    weight_decay: float = 0.1  # 0 for biases and norms
    layer_decay: float = 0.9  # trunk layer-wise decay; pos_embed pinned to 1.0
    grad_clip: float = 0.1
    bf16: bool = True  # autocast
    seed: int = 123
    prob_point_prompt: float = 0.5
    prob_box_given_point: float = 0.5
    init_cond_frames: int = 2
    correction_frames: int = 2
    correction_clicks: int = 7
    checkpoint_every: int = 0  # 0: only at the end
    freeze_image_encoder: bool = False
    # optional extras (Meta's values)
    prob_click_from_gt: float = 0.1  # a correction click sampled from the GT, not the error
    add_corrected_frames_as_cond: bool = True  # add_all_frames_to_correct_as_cond
    hflip_prob: float = 0.5  # horizontal flip of the whole clip
    min_lr_ratio: float = 0.1  # cosine schedule ends at lr * min_lr_ratio
    # linear warm-up over the first steps (0: none, as fine-tuning); training from scratch at
    # high rates needs one, as Meta's pre-training schedules have
    warmup_steps: int = 0
    # "l1" (Meta's) or "bce": see model.training.losses (from scratch, L1 kills the IoU head)
    iou_loss: str = "l1"

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "num_frames", "max_objects", "init_cond_frames")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 1, got {value!r}")
        for name in ("correction_frames", "correction_clicks", "checkpoint_every", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0")
        for name in ("prob_point_prompt", "prob_box_given_point", "prob_click_from_gt"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrainConfig.{name} must be a probability")
        if not 0.0 <= self.hflip_prob <= 1.0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("TrainConfig.hflip_prob and min_lr_ratio must lie in [0, 1]")
        if self.iou_loss not in ("l1", "bce"):
            raise ValueError(f"TrainConfig.iou_loss must be 'l1' or 'bce', got {self.iou_loss!r}")
        if self.base_lr < 0 or self.vision_lr < 0 or self.weight_decay < 0:
            raise ValueError("learning rates and weight decay must be >= 0")
        if not 0.0 <= self.layer_decay <= 1.0 or self.grad_clip <= 0:
            raise ValueError("layer_decay must lie in [0, 1] and grad_clip be > 0")
