"""``import_masklets`` and ``export_dataset`` management commands."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from engine.models import Masklet, Video

EXAMPLE = Path(__file__).parent / "data" / "sav_example"
pytestmark = pytest.mark.django_db


def test_import_then_export_through_the_commands(project, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command(
        "import_masklets",
        project.name,
        str(EXAMPLE),
        "--user",
        "maria",
        "--status",
        "verified",
        stdout=out,
    )
    text = out.getvalue()
    assert "100.0%" in text
    assert "imported 14 masklets" in text
    assert "sav_000001 (new video" in text
    assert Masklet.objects.filter(video__project=project).count() == 14
    zip_path = tmp_path / "sav.zip"
    out = io.StringIO()
    call_command(
        "export_dataset", str(project.pk), "--format", "sav", "--out", str(zip_path), stdout=out
    )
    assert "14 masklets" in out.getvalue()
    assert "100.0%" in out.getvalue()
    with zipfile.ZipFile(zip_path) as zf:
        doc = json.loads(zf.read("sav_000001_auto.json"))
    original = json.loads((EXAMPLE / "sav_000001_auto.json").read_text())
    assert doc["masklet_size_rel"] == original["masklet_size_rel"]
    assert doc["masklet_stability_score"] == original["masklet_stability_score"]


def test_import_into_a_named_video_and_errors(project, tmp_path: Path) -> None:
    video = Video.objects.create(
        project=project, name="kitchen.mp4", width=480, height=848, frame_count=121, status="ready"
    )
    call_command(
        "import_masklets",
        str(project.pk),
        str(EXAMPLE / "sav_000001_manual.json"),
        "--video",
        "kitchen.mp4",
        "--format",
        "sav",
        "--status",
        "submitted",
        stdout=io.StringIO(),
    )
    assert set(Masklet.objects.filter(video=video).values_list("status", flat=True)) == {
        "submitted"
    }
    assert video.masklets.count() == 5
    with pytest.raises(CommandError, match="No project"):
        call_command("import_masklets", "nope", str(EXAMPLE), stdout=io.StringIO())
    with pytest.raises(CommandError, match="does not exist"):
        call_command(
            "import_masklets", str(project.pk), str(tmp_path / "x.json"), stdout=io.StringIO()
        )
    with pytest.raises(CommandError, match=".zip"):
        call_command(
            "export_dataset",
            str(project.pk),
            "--out",
            str(tmp_path / "x.tar"),
            stdout=io.StringIO(),
        )
