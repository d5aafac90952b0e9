"""The simulated data engine end to end: ``manage.py simulate_engine --quick`` (one round, a tiny
random model, 4-frame procedural videos) annotates in every phase, reviews, trains a round, and
prints and writes its figures."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from engine.models import InteractionEvent, Masklet, ModelVersion, Project, Review, Round
from engine.simulation.report import PLOTS
from tests.engine.annotation._serving import serving_settings  # noqa: F401

pytestmark = pytest.mark.usefixtures("db", "serving_settings")


def test_quick_run_prints_the_table_and_writes_the_plots(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("simulate_engine", "--quick", "--out", str(tmp_path), stdout=out)
    text = out.getvalue()

    # one project per phase, each annotated the same two videos through the engine
    projects = Project.objects.filter(name__startswith="Simulated engine")
    assert sorted(projects.values_list("phase", flat=True)) == [1, 2, 3]
    for project in projects:
        assert project.videos.count() == 2
        assert Masklet.objects.filter(video__project=project).exists()
        assert not Masklet.objects.filter(
            video__project=project, status__in=["draft", "submitted", "needs_fix"]
        ).exists()
        events = InteractionEvent.objects.filter(video__project=project)
        assert events.filter(kind=InteractionEvent.Kind.SUBMIT).exists()
    assert Review.objects.filter(revision__masklet__video__project__in=projects).exists()
    # a training round ran on the phase 3 project
    train_project = projects.get(phase=3)
    assert Round.objects.filter(project=train_project).count() == 1
    assert ModelVersion.objects.filter(name__contains="scratch test_tiny").exists()

    # the printed table: a row per phase, the phase ratio, the model per round
    for phase in (1, 2, 3):
        assert any(line.split()[:2] == ["1", str(phase)] for line in text.splitlines())
    assert "phase 1 / phase 3 =" in text
    assert "after round" in text

    # figures JSON and PNGs in storage under simulation/<project_id>/ and in --out
    prefix = f"simulation/{train_project.pk}/"
    figures = json.loads(default_storage.open(prefix + "figures.json").read())
    assert [b["phase"] for b in figures["batches"]] == [1, 2, 3]
    assert [s["after_round"] for s in figures["model_scores"]] == [0, 1]
    for batch in figures["batches"]:
        assert batch["seconds_per_frame"] > 0
        assert batch["clicks_per_clicked_frame"] >= 1
        # the simulation's own counts equal what the engine's telemetry recorded
        assert batch["telemetry"]["agree"], batch["telemetry"]
    for name in PLOTS:
        data: Any = default_storage.open(prefix + name).read()
        assert data.startswith(b"\x89PNG")
        assert (tmp_path / name).read_bytes() == data
    assert (tmp_path / "table.txt").read_text() in text


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--phases", "1,4"), ("--phases", "1,1"), ("--phase-plan", "1,x"), ("--phase-plan", "1,4")],
)
def test_phase_lists_are_checked_before_anything_is_made(flag: str, value: str) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=f"{flag} "):
        call_command("simulate_engine", "--quick", flag, value)
    assert not Project.objects.filter(name__startswith="Simulated engine").exists()


def test_the_phase_ratio_is_given_over_all_rounds_and_per_round() -> None:
    from engine.simulation.engine_run import PhaseBatch, SimulationResult
    from engine.simulation.report import phase_ratio_line, round_ratios

    result = SimulationResult(projects={}, train_project_id=0)
    for number, (p1, p3) in enumerate([(10.0, 10.0), (12.0, 2.0)], start=1):
        for phase, spf in ((1, p1), (3, p3)):
            batch = PhaseBatch(phase=phase, round=number)
            batch.figures = {"seconds": spf * 8, "frames": 8, "seconds_per_frame": spf}
            result.batches.append(batch)

    assert round_ratios(result) == {1: 1.0, 2: 6.0}
    line = phase_ratio_line(result)
    assert "phase 1: 11.00 s/frame; phase 3: 6.00 s/frame; phase 1 / phase 3 = 1.8x" in line
    assert line.endswith("per round 1.0x, 6.0x")


def test_a_phase_plan_runs_one_project_through_its_phases_and_trains_on_all_of_it() -> None:
    from engine.models import DatasetSnapshot

    out = io.StringIO()
    call_command("simulate_engine", "--quick", "--phase-plan", "1,3", stdout=out)

    project = Project.objects.get(name__startswith="Simulated engine", name__endswith="phases 1,3")
    assert Project.objects.filter(name__startswith="Simulated engine").count() == 1
    assert project.phase == Project.Phase.SAM2_FULL
    # round 1 was annotated in phase 1 (image clicks), round 2 in phase 3 (video clicks)
    clicks = InteractionEvent.objects.filter(
        video__project=project, kind=InteractionEvent.Kind.CLICK
    )
    tools: dict[int, set[str]] = {}
    for payload in clicks.values_list("payload", flat=True):
        tools.setdefault(payload["phase"], set()).add(payload.get("tool"))
    assert tools == {1: {"image_click"}, 3: {"video_click"}}
    rounds = list(Round.objects.filter(project=project).order_by("number"))
    assert [r.phase for r in rounds] == [1, 3]
    # round 2 trained on the phase 1 masklets too
    snapshot = DatasetSnapshot.objects.get(pk=rounds[1].metrics["snapshot_id"])
    trained = set(snapshot.revisions.values_list("masklet_id", flat=True))
    by_phase = {
        payload["phase"]: masklet
        for masklet, payload in clicks.values_list("masklet_id", "payload")
    }
    assert {by_phase[1], by_phase[3]} <= trained
    text = out.getvalue()
    assert [line.split()[:2] for line in text.splitlines() if line[:5].strip().isdigit()][:2] == [
        ["1", "1"],
        ["2", "3"],
    ]
    assert "phase 1 / phase 3 =" in text
