"""A model out of the box (``manage.py ensure_model``, called by ``make run``).

1. A promoted version or a ``SAM2_CHECKPOINT`` setting that resolves: nothing to do.
2. Network allowed: fetch the official ``sam2.1_hiera_tiny`` (pinned URL and sha256,
   :mod:`model.download`, short timeout), register it and promote it.
3. Offline (or the download failed): train a small demo model on procedural videos with our own
   training code (:class:`DemoRecipe`: config ``test_tiny``, images first, then short clips),
   evaluate it on held-out procedural videos, register it with metrics ``{"demo": true, ...}``
   and promote it. The checkpoint and its scores are cached under ``DEMO_MODEL_DIR`` keyed by
   the recipe, so it is made once; the pages label it a demo model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from engine.inference import registry
from engine.models import ModelVersion
from engine.training import versions

logger = logging.getLogger(__name__)

OFFICIAL_NAME = "sam2.1_hiera_tiny"


@dataclass(frozen=True)
class DemoRecipe:
    """How the offline demo model is made (every field is part of its cache key).

    Two stages, as SAM 2 mixes SA-1B images with videos: first ``image_steps`` steps on single
    frames (of ``image_videos`` procedural videos with ``image_objects`` objects each: one
    backbone pass trains the decoder on every object, with one click plus
    ``image_correction_clicks`` corrections), then ``steps`` steps on ``num_frames``-frame clips
    of ``train_videos`` videos (memory and tracking). From scratch: a warm-up, high rates and the
    cross-entropy IoU loss (``model.training.losses``: L1 kills the IoU head of a random model).
    """

    config: str = "test_tiny"
    image_videos: int = 100
    image_objects: int = 4
    image_steps: int = 400
    image_correction_clicks: int = 1
    train_videos: int = 24
    eval_videos: int = 4
    first_seed: int = 1000
    frames: int = 8
    size: int = 128
    objects: int = 2
    occlusion: bool = True
    reappear: bool = True
    steps: int = 100
    num_frames: int = 4
    correction_clicks: int = 2
    base_lr: float = 2e-3
    vision_lr: float = 2e-3
    warmup_steps: int = 20
    iou_loss: str = "bce"
    seed: int = 7

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _log(say: Callable[[str], None] | None, message: str) -> None:
    """To ``say`` (a command's output) when given, else to the log (not both: one line each)."""
    if say is not None:
        say(message)
    else:
        logger.info(message)


def configured_model() -> registry.ModelSpec | None:
    try:
        return registry.resolve_model_spec()
    except registry.ModelNotConfigured:
        return None


def ensure_model(
    *,
    allow_download: bool = True,
    recipe: DemoRecipe | None = None,
    say: Callable[[str], None] | None = None,
) -> ModelVersion | None:
    """Make sure workers have a model; returns the version promoted here (or already
    promoted), None when a ``SAM2_CHECKPOINT`` setting already provides one."""
    current = versions.promoted_version()
    if current is not None:
        _log(say, f"model version {current.name!r} is promoted; nothing to do")
        return current
    if configured_model() is not None:
        _log(say, "SAM2_CHECKPOINT provides the model; nothing to do")
        return None
    if allow_download:
        version = _official_model(say)
        if version is not None:
            return version
    return _demo_model(recipe or DemoRecipe(), say)


def _opener(url: str) -> Any:
    timeout = float(getattr(settings, "MODEL_DOWNLOAD_TIMEOUT_SECONDS", 10.0))
    return urllib.request.urlopen(url, timeout=timeout)


def _official_model(say: Callable[[str], None] | None) -> ModelVersion | None:
    from model.download import OFFICIAL_CHECKPOINTS, download_checkpoint

    entry = OFFICIAL_CHECKPOINTS[OFFICIAL_NAME]
    folder = Path(getattr(settings, "SAM2_CACHE_DIR", "") or settings.DATA_DIR) / "official"
    _log(say, f"fetching the official {OFFICIAL_NAME} from {entry.url}")
    try:
        path = download_checkpoint(OFFICIAL_NAME, folder, opener=_opener)
    except (OSError, ValueError) as exc:  # URLError, timeouts and a bad sha256 included
        _log(say, f"could not fetch {OFFICIAL_NAME} ({exc}); using the offline demo model")
        return None
    version = ModelVersion.objects.filter(sha256=entry.sha256).first()
    if version is None:
        version = versions.do_register_checkpoint(
            None,
            path,
            name=f"{OFFICIAL_NAME} (official)",
            config=entry.config_name,
            metrics={"official": True, "demo": False, "url": entry.url},
        )
    if version.status == ModelVersion.Status.PROMOTED:
        return version
    promoted = versions.do_promote(None, version, reason=f"official {OFFICIAL_NAME} out of the box")
    _log(say, f"registered and promoted {promoted.name!r}")
    return promoted


def demo_paths(recipe: DemoRecipe) -> tuple[Path, Path]:
    """(checkpoint, scores JSON) of the recipe's cached demo model."""
    folder = Path(getattr(settings, "DEMO_MODEL_DIR", "") or Path(settings.DATA_DIR) / "demo")
    return folder / f"demo-{recipe.key()}.pt", folder / f"demo-{recipe.key()}.json"


def _demo_model(recipe: DemoRecipe, say: Callable[[str], None] | None) -> ModelVersion:
    ckpt, scores_file = demo_paths(recipe)
    if not (ckpt.is_file() and scores_file.is_file()):
        _log(say, f"training the demo model ({recipe.config}, {recipe.steps} steps); made once")
        scores = train_demo_checkpoint(recipe, ckpt, say=say)
        scores_file.write_text(json.dumps(scores, sort_keys=True))
    else:
        _log(say, f"using the cached demo model {ckpt}")
    scores = json.loads(scores_file.read_text())
    digest = registry.sha256_file(ckpt)
    version = ModelVersion.objects.filter(sha256=digest, config=recipe.config).first()
    if version is None:
        version = versions.do_register_checkpoint(
            None,
            ckpt,
            name=f"demo {recipe.config} {recipe.key()}",
            config=recipe.config,
            metrics={"demo": True, "recipe": asdict(recipe), "heldout": scores},
        )
    if version.status == ModelVersion.Status.PROMOTED:
        return version
    promoted = versions.do_promote(None, version, reason="offline demo model out of the box")
    _log(say, f"registered and promoted the demo model {promoted.name!r} (held-out {scores})")
    return promoted


def train_demo_checkpoint(
    recipe: DemoRecipe, path: Path, say: Callable[[str], None] | None = None
) -> dict[str, float]:
    """Train ``recipe`` from scratch on procedural videos, write the checkpoint to ``path`` and
    return its scores on held-out procedural videos (``jf_1, jf_3, ...``)."""
    import torch

    from engine.simulation.procedural import ProceduralSpec, make_videos
    from engine.simulation.protocol import EvalConfig, evaluate_model
    from model.build import build_sam2
    from model.checkpoint import save_checkpoint
    from model.training.clips import TrainClip
    from model.training.config import TrainConfig
    from model.training.loop import train

    spec = ProceduralSpec(
        num_frames=recipe.frames,
        height=recipe.size,
        width=recipe.size,
        num_objects=recipe.objects,
        occlusion=recipe.occlusion,
        reappear=recipe.reappear,
    )
    train_set = make_videos(recipe.first_seed, recipe.train_videos, spec)
    eval_set = make_videos(recipe.first_seed + recipe.train_videos, recipe.eval_videos, spec)
    torch.manual_seed(recipe.seed)
    model = build_sam2(recipe.config)
    common: dict[str, Any] = {
        "base_lr": recipe.base_lr,
        "vision_lr": recipe.vision_lr,
        "warmup_steps": recipe.warmup_steps,
        "iou_loss": recipe.iou_loss,
        "seed": recipe.seed,
        "bf16": False,  # autocast to bf16 is slow on most CPUs; the demo model is made on CPU
    }
    if recipe.image_steps > 0:
        images = image_clips(recipe)
        _log(say, f"  demo model: {recipe.image_steps} steps on {len(images)} images")
        image_config = TrainConfig(
            steps=recipe.image_steps,
            num_frames=1,
            max_objects=recipe.image_objects,
            prob_point_prompt=1.0,  # a mask prompt on an image is its own output: nothing to learn
            correction_frames=1 if recipe.image_correction_clicks else 0,
            correction_clicks=recipe.image_correction_clicks,
            **common,
        )
        train(model, images, image_config, on_step=_reporter("images", recipe.image_steps, say))
    config = TrainConfig(
        steps=recipe.steps,
        num_frames=min(recipe.num_frames, recipe.frames),
        max_objects=recipe.objects,
        correction_clicks=recipe.correction_clicks,
        **common,
    )
    clips = [TrainClip(frames=v.frames, masks=v.masks) for v in train_set]
    _log(say, f"  demo model: {recipe.steps} steps on {len(clips)} clips")
    train(model, clips, config, on_step=_reporter("clips", recipe.steps, say))
    model.eval()
    _log(say, f"  demo model: evaluating on {recipe.eval_videos} held-out procedural videos")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, path)
    scores = evaluate_model(model, [(v.frames, v.masks) for v in eval_set], EvalConfig())
    return {k: float(v) for k, v in scores.summary().items()}


def image_clips(recipe: DemoRecipe) -> list[Any]:
    """One-frame training clips (``TrainClip``) for the image stage: frames 0, middle and last
    of ``image_videos`` procedural videos with ``image_objects`` objects (seeds after the
    training and held-out videos'); frames showing no object are left out."""
    from engine.simulation.procedural import ProceduralSpec, make_videos
    from model.training.clips import TrainClip

    spec = ProceduralSpec(
        num_frames=recipe.frames,
        height=recipe.size,
        width=recipe.size,
        num_objects=recipe.image_objects,
        occlusion=recipe.occlusion,
        reappear=False,
    )
    first = recipe.first_seed + recipe.train_videos + recipe.eval_videos
    clips = []
    for video in make_videos(first, recipe.image_videos, spec):
        for t in sorted({0, recipe.frames // 2, recipe.frames - 1}):
            if video.masks[:, t].any():
                clips.append(
                    TrainClip(frames=video.frames[t : t + 1], masks=video.masks[:, t : t + 1])
                )
    return clips


def _reporter(stage: str, steps: int, say: Callable[[str], None] | None) -> Callable[..., None]:
    every = max(1, steps // 10)

    def report(stats: Any) -> None:
        if stats.step % every == 0 or stats.step == steps:
            _log(say, f"  demo model ({stage}): step {stats.step}/{steps}, loss {stats.loss:.3f}")

    return report
