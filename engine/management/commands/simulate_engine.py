"""``manage.py simulate_engine``: the data engine run by simulated annotators and reviewers, with
real training rounds between batches (engine.simulation.engine_run); prints the paper's Table 1
columns per phase and round and the model's held-out J&F per round, and writes plots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.errors import EngineError
from engine.simulation.engine_run import START_FROM, SimulationConfig, run_simulation


def _phase_list(flag: str, text: str, example: str) -> tuple[int, ...]:
    """``text`` as a non-empty list of phases among 1, 2 and 3."""
    try:
        phases = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise CommandError(f"--{flag} is a list such as {example}, not {text!r}") from None
    if not phases or any(p not in (1, 2, 3) for p in phases):
        raise CommandError(f"--{flag} lists phases among 1, 2 and 3, e.g. {example}")
    return phases


def _phases(text: str) -> tuple[int, ...]:
    phases = _phase_list("phases", text, "1,2,3")
    if len(set(phases)) != len(phases):
        raise CommandError("--phases lists distinct phases among 1, 2 and 3, e.g. 1,2,3")
    return phases


def _phase_plan(text: str) -> tuple[int, ...]:
    """Each round's phase, in order (phases may repeat)."""
    return _phase_list("phase-plan", text, "1,1,3,3")


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise CommandError(f"--{name} must be at least 1")
    return value


class Command(BaseCommand):
    help = (
        "Run the data engine with simulated annotators (phases 1-3) and reviewers on procedural "
        "videos, with training rounds between batches; print the Table 1 columns and held-out "
        "J&F per round, write plots to storage under simulation/<project_id>/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        default = SimulationConfig()
        parser.add_argument("--phases", default="1,2,3", help="phases to run, e.g. 1,2,3")
        parser.add_argument("--rounds", type=int, default=default.rounds)
        parser.add_argument(
            "--phase-plan",
            help=(
                "each round's phase on one project, as the paper's engine ran (e.g. 1,1,3,3,3,3; "
                "sets the rounds and phases): the rounds train on all of it"
            ),
        )
        parser.add_argument("--videos-per-round", type=int, default=default.videos_per_round)
        parser.add_argument("--frames", type=int, default=default.frames, help="frames per video")
        parser.add_argument("--size", type=int, default=default.size, help="frame side in px")
        parser.add_argument("--objects", type=int, default=default.objects, help="per video")
        parser.add_argument("--heldout-videos", type=int, default=default.heldout_videos)
        parser.add_argument("--train-steps", type=int, default=default.train_steps)
        parser.add_argument("--seed", type=int, default=default.seed)
        parser.add_argument("--start-from", choices=START_FROM, default=default.start_from)
        parser.add_argument(
            "--scratch-config",
            default=default.scratch_config,
            help="config for --start-from scratch",
        )
        parser.add_argument(
            "--demo-config", default=default.demo_config, help="config for --start-from demo"
        )
        parser.add_argument(
            "--demo-steps",
            type=int,
            help="training steps of the demo model (--start-from demo; made once, cached)",
        )
        parser.add_argument("--round-lr", type=float, default=default.round_base_lr)
        parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
        parser.add_argument("--out", type=Path, help="also write the plots and JSON here")
        parser.add_argument(
            "--keep-promoted",
            action="store_true",
            help="leave the last promoted model in place (default: restore the one before the run)",
        )
        parser.add_argument(
            "--quick", action="store_true", help="a tiny run in seconds (tests, a smoke check)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from engine.simulation.report import format_table, outputs_listing, write_outputs

        base = SimulationConfig.quick() if options["quick"] else SimulationConfig()
        overrides: dict[str, Any] = {
            "phases": _phases(options["phases"]),
            "seed": options["seed"],
            "restore_promoted": not options["keep_promoted"],
        }
        for name in ("rounds", "videos_per_round", "frames", "size", "objects", "heldout_videos"):
            flag = name.replace("_", "-")
            if not options["quick"] or options[name] != getattr(SimulationConfig(), name):
                overrides[name] = _positive(flag, options[name])
        if not options["quick"] or options["train_steps"] != SimulationConfig().train_steps:
            overrides["train_steps"] = _positive("train-steps", options["train_steps"])
        if not options["quick"] or options["start_from"] != SimulationConfig().start_from:
            overrides["start_from"] = options["start_from"]
        overrides["scratch_config"] = options["scratch_config"]
        overrides["demo_config"] = options["demo_config"]
        if options["demo_steps"] is not None:
            overrides["demo_steps"] = _positive("demo-steps", options["demo_steps"])
        if options["round_lr"] <= 0:
            raise CommandError("--round-lr must be positive")
        overrides["round_base_lr"] = options["round_lr"]
        overrides["round_vision_lr"] = options["round_lr"] / 2
        overrides["threads"] = max(0, options["threads"])
        if options["phase_plan"]:
            plan = _phase_plan(options["phase_plan"])
            overrides["phase_plan"] = plan
            overrides["phases"] = tuple(sorted(set(plan)))
        config = replace(base, **overrides)
        keys: list[str] = []

        def write(result: Any) -> None:
            keys.extend(write_outputs(result, options["out"]))

        try:
            result = run_simulation(config, echo=self.stdout.write, write_outputs=write)
        except EngineError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("")
        self.stdout.write(format_table(result))
        self.stdout.write("")
        self.stdout.write(f"wall time {result.seconds:.0f} s; outputs in storage:")
        self.stdout.write(outputs_listing(keys))
