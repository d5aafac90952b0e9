"""Model versions: registered checkpoints are validated and stored by sha256; one is promoted;
rollback restores the previous one; a checkpoint corrupted in storage is never loaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from engine.errors import Conflict, PermissionDenied
from engine.inference import registry
from engine.models import ModelPromotion, ModelVersion
from engine.training import versions
from model.build import build_sam2
from tests.engine.test_auto_masklets import tiny_checkpoint
from tests.engine.training._training import model_settings, register_tiny

__all__ = ["model_settings"]
pytestmark = pytest.mark.django_db


def _status(*items: ModelVersion) -> list[str]:
    for item in items:
        item.refresh_from_db()
    return [item.status for item in items]


def test_a_registered_checkpoint_is_a_candidate_stored_under_its_sha256(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path / "a.pt")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    version = versions.do_register_checkpoint(None, path, name="a", config="test_tiny")
    assert version.status == ModelVersion.Status.CANDIDATE
    assert version.sha256 == digest
    assert version.checkpoint_key == f"models/sha256/{digest}.pt"
    with default_storage.open(version.checkpoint_key, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == digest


def test_a_checkpoint_of_another_config_or_no_checkpoint_is_refused(tmp_path: Path) -> None:
    tiny = tiny_checkpoint(tmp_path / "tiny.pt")
    with pytest.raises(versions.InvalidCheckpoint, match="shape"):  # wider model, same keys
        versions.do_register_checkpoint(None, tiny, name="x", config="sam2.1_hiera_t")
    missing = tmp_path / "missing.pt"
    state = build_sam2("test_tiny").state_dict()
    state.pop(next(iter(state)))
    torch.save({"model": state}, missing)
    with pytest.raises(versions.InvalidCheckpoint, match="missing"):
        versions.do_register_checkpoint(None, missing, name="y", config="test_tiny")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(versions.InvalidCheckpoint):
        versions.do_register_checkpoint(None, junk, name="z", config="test_tiny")
    with pytest.raises(versions.InvalidInput, match="unknown model config"):
        versions.do_register_checkpoint(None, junk, name="z", config="nope")
    assert not ModelVersion.objects.exists()


def test_names_are_unique(tmp_path: Path) -> None:
    register_tiny(tmp_path, "same")
    with pytest.raises(Conflict):
        register_tiny(tmp_path, "same", seed=1)


def test_promote_retires_the_previous_and_rollback_restores_it(tmp_path: Path) -> None:
    a, b, c = (register_tiny(tmp_path, n, seed=i) for i, n in enumerate("abc"))
    versions.do_promote(None, a)
    versions.do_promote(None, b)
    assert _status(a, b, c) == ["retired", "promoted", "candidate"]
    versions.do_promote(None, c)
    assert versions.rollback_target(c) == b
    # rollback: the previous one serves again, the current one retires, history kept
    assert versions.do_rollback(None) == b
    assert _status(a, b, c) == ["retired", "promoted", "retired"]
    # a second rollback walks further back
    assert versions.do_rollback(None) == a
    assert _status(a, b, c) == ["promoted", "retired", "retired"]
    with pytest.raises(Conflict, match="no earlier"):
        versions.do_rollback(None)
    actions = list(ModelPromotion.objects.order_by("id").values_list("action", "version__name"))
    assert actions == [
        ("promote", "a"),
        ("promote", "b"),
        ("promote", "c"),
        ("rollback", "b"),
        ("rollback", "a"),
    ]
    with pytest.raises(Conflict, match="already"):
        versions.do_promote(None, a)


def test_lineage_lists_ancestors(tmp_path: Path) -> None:
    a = register_tiny(tmp_path, "a")
    b = register_tiny(tmp_path, "b", seed=1, parent=a)
    c = register_tiny(tmp_path, "c", seed=2, parent=b)
    assert versions.lineage(c) == [c, b, a]
    assert versions.version_summary(c)["lineage"] == [b.pk, a.pk]


def test_only_managers_register_promote_and_roll_back(
    tmp_path: Path, project, annotator, outsider, manager
) -> None:
    path = tiny_checkpoint(tmp_path / "a.pt")
    with pytest.raises(PermissionDenied):
        versions.do_register_checkpoint(annotator, path, name="a", config="test_tiny")
    version = versions.do_register_checkpoint(manager, path, name="a", config="test_tiny")
    with pytest.raises(PermissionDenied):
        versions.do_promote(annotator, version)
    with pytest.raises(PermissionDenied):
        versions.do_rollback(annotator)
    versions.check_may_view_models(annotator)  # a project member reads
    with pytest.raises(PermissionDenied):
        versions.check_may_view_models(outsider)
    assert _status(version) == ["candidate"]


def _corrupt(key: str) -> None:
    with default_storage.open(key, "rb") as fh:
        data = bytearray(fh.read())
    data[len(data) // 2] ^= 0xFF
    default_storage.delete(key)
    default_storage.save(key, ContentFile(bytes(data)))


def test_a_checkpoint_corrupted_in_storage_is_never_promoted_nor_loaded(
    tmp_path: Path, model_settings
) -> None:
    good = register_tiny(tmp_path, "good")
    versions.do_promote(None, good)
    bad = register_tiny(tmp_path, "bad", seed=1)
    _corrupt(bad.checkpoint_key)
    with pytest.raises(versions.CorruptCheckpoint, match="sha256"):
        versions.do_promote(None, bad)
    assert _status(good, bad) == ["promoted", "candidate"]
    # a promoted version whose stored file is corrupted afterwards is refused by the registry
    _corrupt(good.checkpoint_key)
    with pytest.raises(registry.ModelNotConfigured, match="sha256 mismatch"):
        registry.load_model()
    assert registry.cached_model_keys() == []
    assert not list(Path(model_settings.SAM2_CACHE_DIR).glob("*.pt"))
