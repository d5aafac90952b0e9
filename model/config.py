"""Typed configurations of SAM 2.1 models.

`CONFIGS` holds the four official SAM 2.1 sizes (values of Meta's `configs/sam2.1/*.yaml`) and small
test configurations. `get_config(name, image_size)` returns one, optionally at another input size.
Everything that differs between configurations lives in `Sam2Config`; the SAM prompt encoder and
mask decoder hyper-parameters are fixed (as in the official `SAM2Base._build_sam_heads`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import accumulate

MIN_IMAGE_SIZE = 128
IMAGE_SIZE_MULTIPLE = 32


@dataclass(frozen=True)
class HieraConfig:
    """Hiera trunk of the image encoder (official `Hiera` constructor arguments)."""

    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (2, 3, 16, 3)
    global_att_blocks: tuple[int, ...] = (12, 16, 20)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)
    q_pool: int = 3
    q_stride: tuple[int, int] = (2, 2)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    drop_path_rate: float = 0.0

    def __post_init__(self) -> None:
        if len(self.stages) != len(self.window_spec):
            raise ValueError("HieraConfig: stages and window_spec need the same length")
        if not 0 <= self.q_pool <= len(self.stages) - 1:
            raise ValueError("HieraConfig: q_pool must be between 0 and len(stages) - 1")

    @property
    def depth(self) -> int:
        return sum(self.stages)

    @property
    def stage_ends(self) -> tuple[int, ...]:
        """Index of the last block of each stage."""
        return tuple(end - 1 for end in accumulate(self.stages))

    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Channel count of each stage's output, highest resolution first."""
        return tuple(int(self.embed_dim * self.dim_mul**i) for i in range(len(self.stages)))

    @property
    def backbone_channel_list(self) -> tuple[int, ...]:
        """Channel counts lowest resolution first, as the FPN neck expects them."""
        return tuple(reversed(self.stage_dims))


@dataclass(frozen=True)
class Sam2Config:
    """A whole SAM 2 model. Defaults are the values shared by all four SAM 2.1 YAMLs."""

    name: str
    trunk: HieraConfig = field(default_factory=HieraConfig)
    image_size: int = 1024
    backbone_stride: int = 16
    # image encoder neck
    d_model: int = 256
    fpn_top_down_levels: tuple[int, ...] = (2, 3)
    fpn_interp_mode: str = "nearest"
    scalp: int = 1
    # memory attention / memory encoder
    mem_dim: int = 64
    memory_attention_layers: int = 4
    memory_attention_ffn_dim: int = 2048
    memory_attention_dropout: float = 0.1
    rope_theta: float = 10000.0
    num_maskmem: int = 7
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = False
    use_mask_input_as_output_without_sam: bool = True
    max_cond_frames_in_attn: int = -1
    directly_add_no_mem_embed: bool = True
    no_obj_embed_spatial: bool = True
    memory_temporal_stride_for_eval: int = 1
    non_overlap_masks_for_mem_enc: bool = False
    # SAM heads
    use_high_res_features_in_sam: bool = True
    multimask_output_in_sam: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True
    use_multimask_token_for_obj_ptr: bool = True
    iou_prediction_use_sigmoid: bool = True
    pred_obj_scores: bool = True
    pred_obj_scores_mlp: bool = True
    dynamic_multimask_via_stability: bool = False
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
    # object pointers
    use_obj_ptrs_in_encoder: bool = True
    max_obj_ptrs_in_encoder: int = 16
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    only_obj_ptrs_in_the_past_for_eval: bool = True
    fixed_no_obj_ptr: bool = True
    soft_no_obj_ptr: bool = False
    use_mlp_for_obj_ptr_proj: bool = True
    # read by video drivers (an attribute of the official SAM2VideoPredictor)
    add_all_frames_to_correct_as_cond: bool = False

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        if self.proj_tpos_enc_in_obj_ptrs and not self.add_tpos_enc_to_obj_ptrs:
            raise ValueError("proj_tpos_enc_in_obj_ptrs needs add_tpos_enc_to_obj_ptrs")
        if self.fixed_no_obj_ptr and not (self.pred_obj_scores and self.use_obj_ptrs_in_encoder):
            raise ValueError("fixed_no_obj_ptr needs pred_obj_scores and use_obj_ptrs_in_encoder")
        if self.d_model % self.mem_dim:
            raise ValueError("d_model must be a multiple of mem_dim")

    @property
    def image_embedding_size(self) -> int:
        """Side of the stride-16 feature map (64 at image_size 1024)."""
        return self.image_size // self.backbone_stride


def check_image_size(image_size: int) -> None:
    """Raise ValueError unless `image_size` is a multiple of 32 and at least 128."""
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or image_size < MIN_IMAGE_SIZE
        or image_size % IMAGE_SIZE_MULTIPLE
    ):
        raise ValueError(
            f"image_size must be an integer multiple of {IMAGE_SIZE_MULTIPLE} and at least "
            f"{MIN_IMAGE_SIZE} (Hiera's stride-32 stage and its 8x8 window position embedding "
            f"need it), got {image_size!r}"
        )


_HIERA_T = HieraConfig(
    embed_dim=96,
    num_heads=1,
    stages=(1, 2, 7, 2),
    global_att_blocks=(5, 7, 9),
    window_pos_embed_bkg_spatial_size=(7, 7),
)
_HIERA_S = HieraConfig(
    embed_dim=96,
    num_heads=1,
    stages=(1, 2, 11, 2),
    global_att_blocks=(7, 10, 13),
    window_pos_embed_bkg_spatial_size=(7, 7),
)
_HIERA_B_PLUS = HieraConfig(embed_dim=112, num_heads=2)
_HIERA_L = HieraConfig(
    embed_dim=144,
    num_heads=2,
    stages=(2, 6, 36, 4),
    global_att_blocks=(23, 33, 43),
    window_spec=(8, 4, 16, 8),
    window_pos_embed_bkg_spatial_size=(7, 7),
)
# 4 blocks, one per stage; block 3 attends globally. For fast unit tests only.
_HIERA_TEST = HieraConfig(
    embed_dim=16,
    num_heads=1,
    stages=(1, 1, 1, 1),
    global_att_blocks=(3,),
    window_spec=(8, 4, 4, 2),
    window_pos_embed_bkg_spatial_size=(4, 4),
)

# Narrow 8-block Hiera for a model trained from scratch on CPUs (model/training): 256 px input,
# 2 memory-attention layers with a 1024-wide FFN. Stage 4 runs at 8x8, i.e. globally.
_HIERA_DEMO = HieraConfig(
    embed_dim=32,
    num_heads=1,
    stages=(1, 2, 4, 1),
    global_att_blocks=(5, 7),
    window_spec=(8, 4, 8, 8),
    window_pos_embed_bkg_spatial_size=(4, 4),
)

CONFIGS: dict[str, Sam2Config] = {
    "sam2.1_hiera_t": Sam2Config(name="sam2.1_hiera_t", trunk=_HIERA_T),
    "sam2.1_hiera_s": Sam2Config(name="sam2.1_hiera_s", trunk=_HIERA_S),
    "sam2.1_hiera_b+": Sam2Config(name="sam2.1_hiera_b+", trunk=_HIERA_B_PLUS),
    "sam2.1_hiera_l": Sam2Config(name="sam2.1_hiera_l", trunk=_HIERA_L),
    "test_tiny": Sam2Config(
        name="test_tiny", trunk=_HIERA_TEST, image_size=128, memory_attention_layers=2
    ),
    "test_tiny_256": Sam2Config(
        name="test_tiny_256", trunk=_HIERA_TEST, image_size=256, memory_attention_layers=2
    ),
    "demo_small": Sam2Config(
        name="demo_small",
        trunk=_HIERA_DEMO,
        image_size=256,
        memory_attention_layers=2,
        memory_attention_ffn_dim=1024,
    ),
}

# Official YAML path (inside Meta's `sam2` package) of each official configuration.
OFFICIAL_YAML: dict[str, str] = {
    "sam2.1_hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


def get_config(name: str, image_size: int | None = None) -> Sam2Config:
    """Return the configuration `name`, at `image_size` if given (multiple of 32, >= 128)."""
    if name not in CONFIGS:
        known = ", ".join(sorted(CONFIGS))
        raise ValueError(f"unknown model config {name!r}; known configs: {known}")
    config = CONFIGS[name]
    if image_size is None or image_size == config.image_size:
        return config
    check_image_size(image_size)
    return replace(config, image_size=image_size)
