"""``manage.py register_model``: a checkpoint on disk becomes a (promoted) version; bad input is a
command error that changes nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from engine.models import ModelVersion
from tests.engine.test_auto_masklets import tiny_checkpoint

pytestmark = pytest.mark.django_db


def test_register_and_promote_from_the_command_line(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path / "m.pt")
    out = io.StringIO()
    call_command("register_model", str(path), "--name", "m", "--config", "test_tiny", stdout=out)
    first = ModelVersion.objects.get(name="m")
    assert first.status == "candidate"
    assert f"sha256 {first.sha256}" in out.getvalue()
    child = tiny_checkpoint(tmp_path / "c.pt", seed=1)
    call_command(
        "register_model",
        str(child),
        "--name",
        "c",
        "--config",
        "test_tiny",
        "--parent",
        str(first.pk),
        "--promote",
        stdout=io.StringIO(),
    )
    second = ModelVersion.objects.get(name="c")
    assert (second.status, second.parent) == ("promoted", first)


def test_bad_input_is_a_command_error(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path / "m.pt")
    with pytest.raises(CommandError, match="not a checkpoint of sam2.1_hiera_t"):
        call_command("register_model", str(path), "--name", "m", "--config", "sam2.1_hiera_t")
    with pytest.raises(CommandError, match="is not a file"):
        call_command("register_model", str(tmp_path / "no.pt"), "--name", "m", "--config", "x")
    assert not ModelVersion.objects.exists()
