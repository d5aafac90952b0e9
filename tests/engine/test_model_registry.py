"""Which model a worker loads: promoted ModelVersion, else SAM2_CHECKPOINT, else a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.inference import registry
from engine.inference.registry import ModelNotConfigured, load_model, resolve_model_spec
from engine.models import ModelVersion
from model.build import build_sam2
from model.checkpoint import save_checkpoint, sha256_file
from model.download import OFFICIAL_CHECKPOINTS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean(settings: Any, tmp_path: Path) -> Any:
    settings.SAM2_CACHE_DIR = str(tmp_path / "cache")
    settings.SAM2_CHECKPOINT = ""
    settings.SAM2_CONFIG = ""
    settings.SAM2_CHECKPOINT_DIR = ""
    settings.SAM2_DEVICE = "cpu"
    registry.clear_model_cache()
    yield
    registry.clear_model_cache()


def _checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    save_checkpoint(build_sam2("test_tiny"), path)
    return path


def _promote(name: str, path: Path) -> ModelVersion:
    ModelVersion.objects.filter(status=ModelVersion.Status.PROMOTED).update(
        status=ModelVersion.Status.RETIRED
    )
    version = ModelVersion.objects.create(
        name=name, config="test_tiny", status=ModelVersion.Status.PROMOTED
    )
    return registry.store_checkpoint_for_version(version, path)


def test_promoted_version_is_loaded_from_storage_with_its_weights(tmp_path: Path) -> None:
    # given
    path = _checkpoint(tmp_path / "a.pt", seed=1)
    version = _promote("r1", path)
    # when
    spec = resolve_model_spec()
    loaded = load_model()
    # then
    assert (spec.source, spec.config, spec.model_version_id) == (
        "promoted",
        "test_tiny",
        version.pk,
    )
    assert spec.sha256 == sha256_file(path) == version.sha256
    assert spec.location == f"models/{version.pk}/checkpoint.pt"
    saved = torch.load(path, weights_only=True)["model"]
    got = loaded.model.state_dict()
    assert set(saved) == set(got)
    assert all(torch.equal(saved[k], got[k].cpu()) for k in saved)
    assert not loaded.model.training


def test_models_are_cached_per_config_and_sha256(tmp_path: Path) -> None:
    _promote("r1", _checkpoint(tmp_path / "a.pt", seed=1))
    first = load_model()
    assert load_model() is first  # same process, same weights: no reload
    # a newly promoted model is picked up by the next load and replaces the old one
    second_version = _promote("r2", _checkpoint(tmp_path / "b.pt", seed=2))
    second = load_model()
    assert second is not first
    assert second.spec.sha256 == second_version.sha256 != first.spec.sha256
    assert registry.cached_model_keys() == [("test_tiny", second_version.sha256, "cpu")]


def test_configured_checkpoint_path_is_used_when_nothing_is_promoted(
    tmp_path: Path, settings: Any
) -> None:
    path = _checkpoint(tmp_path / "local.pt", seed=3)
    settings.SAM2_CHECKPOINT = str(path)
    settings.SAM2_CONFIG = "test_tiny"
    spec = resolve_model_spec()
    assert (spec.source, spec.location, spec.config) == ("path", str(path), "test_tiny")
    assert spec.sha256 == sha256_file(path)
    assert load_model().spec == spec


def test_checkpoint_path_without_config_names_sam2_config(tmp_path: Path, settings: Any) -> None:
    settings.SAM2_CHECKPOINT = str(_checkpoint(tmp_path / "local.pt", seed=3))
    with pytest.raises(ModelNotConfigured, match="set SAM2_CONFIG"):
        resolve_model_spec()
    settings.SAM2_CONFIG = "hiera_huge"
    with pytest.raises(ModelNotConfigured, match="unknown model config 'hiera_huge'"):
        resolve_model_spec()


def test_nothing_configured_says_what_to_set() -> None:
    with pytest.raises(ModelNotConfigured) as info:
        resolve_model_spec()
    message = str(info.value)
    for hint in ("promote a ModelVersion", "SAM2_CHECKPOINT", "SAM2_CONFIG", "sam2.1_hiera_tiny"):
        assert hint in message


def test_official_name_needs_a_downloaded_file(tmp_path: Path, settings: Any) -> None:
    settings.SAM2_CHECKPOINT = "sam2.1_hiera_tiny"
    with pytest.raises(ModelNotConfigured, match="set SAM2_CHECKPOINT_DIR"):
        resolve_model_spec()
    settings.SAM2_CHECKPOINT_DIR = str(tmp_path)
    with pytest.raises(ModelNotConfigured, match="python -m model download sam2.1_hiera_tiny"):
        resolve_model_spec()
    # a file in place resolves to the registry's config and digest (nothing is downloaded)
    (tmp_path / "sam2.1_hiera_tiny.pt").write_bytes(b"placeholder")
    spec = resolve_model_spec()
    entry = OFFICIAL_CHECKPOINTS["sam2.1_hiera_tiny"]
    assert (spec.source, spec.config, spec.sha256) == ("official", "sam2.1_hiera_t", entry.sha256)
    # and its digest is checked before loading
    with pytest.raises(ModelNotConfigured, match="sha256 mismatch"):
        load_model(spec)


def test_unknown_checkpoint_setting_is_refused(settings: Any) -> None:
    settings.SAM2_CHECKPOINT = "/nowhere/model.pt"
    with pytest.raises(ModelNotConfigured, match="neither an existing file"):
        resolve_model_spec()


def test_broken_promoted_versions_give_clear_errors(tmp_path: Path) -> None:
    version = ModelVersion.objects.create(
        name="empty", config="test_tiny", status=ModelVersion.Status.PROMOTED
    )
    with pytest.raises(ModelNotConfigured, match="has no checkpoint_key"):
        resolve_model_spec()
    ModelVersion.objects.filter(pk=version.pk).update(checkpoint_key="models/x/missing.pt")
    with pytest.raises(ModelNotConfigured, match="has no sha256"):
        resolve_model_spec()
    ModelVersion.objects.filter(pk=version.pk).update(sha256="0" * 64)
    with pytest.raises(ModelNotConfigured, match="is not in storage"):
        load_model()
    # a stored file whose digest is not the recorded one is refused before loading
    registry.store_checkpoint_for_version(version, _checkpoint(tmp_path / "c.pt", seed=4))
    ModelVersion.objects.filter(pk=version.pk).update(sha256="f" * 64)
    with pytest.raises(ModelNotConfigured, match="sha256"):
        load_model()
    # a checkpoint of another config does not load into this one
    ModelVersion.objects.filter(pk=version.pk).update(
        sha256=sha256_file(tmp_path / "c.pt"), config="sam2.1_hiera_t"
    )
    with pytest.raises(ModelNotConfigured, match="does not load"):
        load_model()
