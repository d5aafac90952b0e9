"""A model out of the box: ensure_model keeps a promoted model, registers and promotes the
official tiny checkpoint when Meta's server answers (served locally here), and otherwise trains,
caches and promotes a demo model marked as such. Nothing is downloaded."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from engine.annotation import serving
from engine.annotation.serving import model_status
from engine.inference import registry
from engine.models import ModelVersion
from engine.training import demo_model, versions
from engine.training.demo_model import DemoRecipe, ensure_model
from model import download
from tests.engine.test_auto_masklets import tiny_checkpoint
from tests.engine.training._training import model_settings, register_tiny

__all__ = ["model_settings"]
pytestmark = pytest.mark.django_db

TINY_RECIPE = DemoRecipe(
    config="test_tiny",
    train_videos=1,
    eval_videos=1,
    frames=4,
    size=64,
    objects=1,
    occlusion=False,
    reappear=False,
    copy_steps=1,
    steps=1,
    num_frames=2,
    correction_clicks=1,
    image_videos=1,
    image_objects=1,
    image_steps=1,
)


@pytest.fixture(autouse=True)
def fresh_model_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # model_name() caches (name, demo) by version id for 30 s; ids are reused from test to test
    monkeypatch.setattr(serving, "_NAMES", {})


@pytest.fixture
def demo_dir(model_settings: Any, tmp_path: Path) -> Path:
    model_settings.DEMO_MODEL_DIR = str(tmp_path / "demo-model")
    model_settings.MODEL_DOWNLOAD_TIMEOUT_SECONDS = 0.5
    return Path(model_settings.DEMO_MODEL_DIR)


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def _offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Meta's download server unreachable; returns the URLs asked for."""
    asked: list[str] = []

    def unreachable(url: str, timeout: float | None = None) -> Any:
        asked.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    return asked


def test_offline_a_demo_model_is_trained_once_registered_as_demo_and_promoted(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _offline(monkeypatch)
    version = ensure_model(recipe=TINY_RECIPE)
    assert asked == [download.OFFICIAL_CHECKPOINTS["sam2.1_hiera_tiny"].url]
    assert version is not None
    assert version.status == ModelVersion.Status.PROMOTED
    assert version.config == "test_tiny"
    assert version.metrics["demo"] is True
    assert set(version.metrics["heldout"]) == {"jf_1", "jf_3", "jf_5", "clicks_to_075", "jf_mask"}
    assert version.metrics["recipe"]["steps"] == 1
    status = model_status()
    assert (status["name"], status["demo"]) == (version.name, True)
    ckpt, scores = demo_model.demo_paths(TINY_RECIPE)
    assert ckpt.is_file()
    assert scores.is_file()
    assert registry.sha256_file(ckpt) == version.sha256

    # made once: a second database (same DATA_DIR) reuses the cached checkpoint, no training
    ModelVersion.objects.all().delete()

    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the cached demo model must be reused")

    monkeypatch.setattr(demo_model, "train_demo_checkpoint", no_training)
    again = ensure_model(allow_download=False, recipe=TINY_RECIPE)
    assert again is not None
    assert again.sha256 == version.sha256
    # and a promoted model is kept as it is
    assert ensure_model(recipe=replace(TINY_RECIPE, steps=2)) == again


def test_a_promoted_model_is_kept(tmp_path: Path, demo_dir: Path, monkeypatch) -> None:
    asked = _offline(monkeypatch)
    mine = versions.do_promote(None, register_tiny(tmp_path, "mine"))
    assert ensure_model(recipe=TINY_RECIPE) == mine
    assert asked == []
    assert not demo_dir.exists()


def test_the_official_tiny_checkpoint_is_fetched_registered_and_promoted(
    tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Meta's server, served locally: a small checkpoint pinned as if it were the official one
    data = tiny_checkpoint(tmp_path / "served.pt").read_bytes()
    entry = download.OFFICIAL_CHECKPOINTS["sam2.1_hiera_tiny"]
    pinned = replace(
        entry, sha256=versions.hashlib.sha256(data).hexdigest(), config_name="test_tiny"
    )
    monkeypatch.setitem(download.OFFICIAL_CHECKPOINTS, "sam2.1_hiera_tiny", pinned)
    asked: list[tuple[str, float | None]] = []

    def meta_server(url: str, timeout: float | None = None) -> FakeResponse:
        asked.append((url, timeout))
        return FakeResponse(data)

    monkeypatch.setattr(urllib.request, "urlopen", meta_server)
    version = ensure_model(recipe=TINY_RECIPE)
    assert asked == [(entry.url, 0.5)]
    assert version is not None
    assert (version.name, version.status) == ("sam2.1_hiera_tiny (official)", "promoted")
    assert version.metrics == {"official": True, "demo": False, "url": entry.url}
    assert model_status()["demo"] is False
    assert not demo_dir.exists()


def test_a_download_with_a_wrong_sha256_falls_back_to_the_demo_model(
    tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(b"tampered")
    )
    version = ensure_model(recipe=TINY_RECIPE)
    assert version is not None
    assert version.metrics["demo"] is True
    assert not list((Path(demo_dir.parent) / "model-cache" / "official").glob("*.pt"))


def test_the_command_reports_what_serves(tmp_path: Path, demo_dir: Path) -> None:
    versions.do_promote(None, register_tiny(tmp_path, "mine"))
    out = io.StringIO()
    call_command("ensure_model", "--offline", stdout=out)
    assert "model version" in out.getvalue()
    assert "serving model version" in out.getvalue()
    assert "mine" in out.getvalue()
