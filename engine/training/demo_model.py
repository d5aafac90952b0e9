"""A model out of the box (``manage.py ensure_model``, called by ``make run``).

1. A promoted version or a ``SAM2_CHECKPOINT`` setting that resolves: nothing to do.
2. Network allowed: fetch the official ``sam2.1_hiera_tiny`` (pinned URL and sha256,
   :mod:`model.download`, short timeout), register it and promote it.
3. Offline (or the download failed): train a small demo model on procedural videos with our own
   training code (:class:`DemoRecipe`: config ``test_tiny``; images, still clips, moving clips),
   evaluate it on held-out procedural videos, register it with metrics ``{"demo": true, ...}``
   and promote it. The checkpoint and its scores are cached under ``DEMO_MODEL_DIR`` keyed by
   the recipe, so it is made once; the pages label it a demo model.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings

from engine.inference import registry
from engine.models import ModelVersion
from engine.training import versions
from engine.training.demo_recipe import DemoRecipe, say_or_log, train_demo_checkpoint

__all__ = ["DemoRecipe", "ensure_model", "train_demo_checkpoint"]


OFFICIAL_NAME = "sam2.1_hiera_tiny"


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
        say_or_log(say, f"model version {current.name!r} is promoted; nothing to do")
        return current
    if configured_model() is not None:
        say_or_log(say, "SAM2_CHECKPOINT provides the model; nothing to do")
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
    say_or_log(say, f"fetching the official {OFFICIAL_NAME} from {entry.url}")
    try:
        path = download_checkpoint(OFFICIAL_NAME, folder, opener=_opener)
    except (OSError, ValueError) as exc:  # URLError, timeouts and a bad sha256 included
        say_or_log(say, f"could not fetch {OFFICIAL_NAME} ({exc}); using the offline demo model")
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
    say_or_log(say, f"registered and promoted {promoted.name!r}")
    return promoted


def demo_paths(recipe: DemoRecipe) -> tuple[Path, Path]:
    """(checkpoint, scores JSON) of the recipe's cached demo model."""
    folder = Path(getattr(settings, "DEMO_MODEL_DIR", "") or Path(settings.DATA_DIR) / "demo")
    return folder / f"demo-{recipe.key()}.pt", folder / f"demo-{recipe.key()}.json"


def _demo_model(recipe: DemoRecipe, say: Callable[[str], None] | None) -> ModelVersion:
    ckpt, scores_file = demo_paths(recipe)
    if not (ckpt.is_file() and scores_file.is_file()):
        say_or_log(
            say, f"training the demo model ({recipe.config}, {recipe.steps} steps); made once"
        )
        scores = train_demo_checkpoint(recipe, ckpt, say=say)
        scores_file.write_text(json.dumps(scores, sort_keys=True))
    else:
        say_or_log(say, f"using the cached demo model {ckpt}")
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
    say_or_log(say, f"registered and promoted the demo model {promoted.name!r} (held-out {scores})")
    return promoted
