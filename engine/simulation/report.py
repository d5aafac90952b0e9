"""The simulated engine's figures as a printed table, a JSON file and PNG plots.

Outputs go to default storage under ``simulation/<project_id>/`` (the project the rounds train
on; the rounds page lists that prefix) and, when asked, to a local folder too.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from engine.simulation.engine_run import SimulationResult

PLOTS = ("table1.png", "model_jf.png", "loss.png")


def storage_prefix(project_id: int) -> str:
    return f"simulation/{project_id}/"


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(result: SimulationResult) -> str:
    """Per round and phase: the paper's Table 1 columns, the data's J&F against the ground truth,
    the verdicts, and the held-out J&F of the model that annotated the batch; then the model's
    held-out J&F after each round."""
    header = (
        f"{'round':>5} {'phase':>5} {'s/frame':>8} {'edited%':>8} {'clk/clkfr':>9} "
        f"{'data J&F':>8} {'ok/fix/rej':>10} {'events':>6} {'model J&F(3 clk)':>16}"
    )
    lines = [header, "-" * len(header)]
    for figures in sorted(
        (b.figures for b in result.batches), key=lambda f: (f["round"], f["phase"])
    ):
        verdicts = figures["verdicts"]
        statuses = figures["statuses"]
        outcome = (
            f"{statuses.get('verified', 0)}/{verdicts['unsatisfactory']}/"
            f"{statuses.get('rejected', 0)}"
        )
        lines.append(
            f"{figures['round']:>5} {figures['phase']:>5} "
            f"{_num(figures['seconds_per_frame'], '.2f'):>8} "
            f"{_num(figures['edited_frames_pct'], '.1f'):>8} "
            f"{_num(figures['clicks_per_clicked_frame'], '.2f'):>9} "
            f"{_num(figures['data_jf'], '.3f'):>8} {outcome:>10} "
            f"{'ok' if figures['telemetry']['agree'] else 'DIFF':>6} "
            f"{_num(figures.get('model_jf'), '.3f'):>16}"
        )
    lines.append("")
    lines.append(phase_ratio_line(result))
    lines.append("")
    model_header = (
        f"{'after round':>11} {'J&F 1 clk':>9} {'J&F 3 clk':>9} {'J&F 5 clk':>9} "
        f"{'J&F mask':>8} {'clicks→0.75':>11} {'promoted':>8}  model"
    )
    lines += [model_header, "-" * len(model_header)]
    promoted = {0: "-"} | {
        i + 1: ("yes" if r.get("promoted") else "no") for i, r in enumerate(result.rounds)
    }
    for score in result.model_scores:
        after = score["after_round"]
        lines.append(
            f"{after:>11} {_num(score.get('jf_1'), '.3f'):>9} {_num(score.get('jf_3'), '.3f'):>9} "
            f"{_num(score.get('jf_5'), '.3f'):>9} {_num(score.get('jf_mask'), '.3f'):>8} "
            f"{_num(score.get('clicks_to_075'), '.2f'):>11} {promoted.get(after, '-'):>8}  "
            f"{score.get('model')}"
        )
    return "\n".join(lines)


def phase_totals(result: SimulationResult) -> dict[int, dict[str, float]]:
    """Seconds per frame of each phase over all its batches (sums over rounds)."""
    totals: dict[int, dict[str, float]] = {}
    for batch in result.batches:
        f = batch.figures
        row = totals.setdefault(batch.phase, {"seconds": 0.0, "frames": 0.0})
        row["seconds"] += f["seconds"]
        row["frames"] += f["frames"]
    return {
        phase: {**row, "seconds_per_frame": row["seconds"] / row["frames"] if row["frames"] else 0}
        for phase, row in totals.items()
    }


def round_ratios(result: SimulationResult) -> dict[int, float]:
    """Per round, the first phase's seconds per frame over the last phase's (e.g. phase 1 /
    phase 3); rounds without both phases, or where the last costs nothing, are left out."""
    by_round: dict[int, dict[int, float]] = {}
    for batch in result.batches:
        spf = batch.figures.get("seconds_per_frame")
        if spf is not None:
            by_round.setdefault(batch.round, {})[batch.phase] = float(spf)
    ratios = {}
    for number, phases in sorted(by_round.items()):
        first, last = min(phases), max(phases)
        if first != last and phases[last] > 0:
            ratios[number] = phases[first] / phases[last]
    return ratios


def phase_ratio_line(result: SimulationResult) -> str:
    totals = phase_totals(result)
    parts = [f"phase {p}: {t['seconds_per_frame']:.2f} s/frame" for p, t in sorted(totals.items())]
    first, last = min(totals, default=None), max(totals, default=None)
    if first is not None and last is not None and first != last:
        slow, fast = totals[first]["seconds_per_frame"], totals[last]["seconds_per_frame"]
        if fast > 0:
            parts.append(f"phase {first} / phase {last} = {slow / fast:.1f}x")
        per_round = round_ratios(result)
        if per_round:
            parts.append("per round " + ", ".join(f"{ratio:.1f}x" for ratio in per_round.values()))
    return "all rounds: " + "; ".join(parts)


# --- plots -------------------------------------------------------------------------------------


def _figure_png(draw: Any) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig = plt.figure(figsize=(9, 3.2), dpi=100)
    try:
        draw(fig)
        for ax in fig.axes:  # rounds and steps are whole numbers
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _by_phase(result: SimulationResult, key: str) -> dict[int, tuple[list[int], list[float]]]:
    series: dict[int, tuple[list[int], list[float]]] = {}
    for batch in sorted(result.batches, key=lambda b: (b.phase, b.round)):
        value = batch.figures.get(key)
        if value is None:
            continue
        xs, ys = series.setdefault(batch.phase, ([], []))
        xs.append(batch.round)
        ys.append(float(value))
    return series


def table1_png(result: SimulationResult) -> bytes:
    columns = (
        ("seconds_per_frame", "seconds per frame"),
        ("edited_frames_pct", "% edited frames"),
        ("clicks_per_clicked_frame", "clicks per clicked frame"),
    )

    def draw(fig: Any) -> None:
        for n, (key, title) in enumerate(columns, start=1):
            ax = fig.add_subplot(1, len(columns), n)
            for phase, (xs, ys) in sorted(_by_phase(result, key).items()):
                ax.plot(xs, ys, marker="o", label=f"phase {phase}")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("round")
            ax.grid(alpha=0.3)
            if n == 1:
                ax.legend(fontsize=8)

    return _figure_png(draw)


def model_jf_png(result: SimulationResult) -> bytes:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 2, 1)
        xs = [s["after_round"] for s in result.model_scores]
        for key in ("jf_1", "jf_3", "jf_5", "jf_mask"):
            ys = [s.get(key) for s in result.model_scores]
            if all(isinstance(y, float | int) for y in ys):
                ax.plot(xs, ys, marker="o", label=key)
        ax.set_title("promoted model, held-out J&F", fontsize=10)
        ax.set_xlabel("after round")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax = fig.add_subplot(1, 2, 2)
        for phase, (rounds, jfs) in sorted(_by_phase(result, "data_jf").items()):
            ax.plot(rounds, jfs, marker="o", label=f"phase {phase}")
        ax.set_title("J&F of the annotated data vs ground truth", fontsize=10)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    return _figure_png(draw)


def loss_png(result: SimulationResult) -> bytes:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        drawn = False
        for n, summary in enumerate(result.rounds, start=1):
            curve = summary.get("loss_curve") or []
            if curve:
                ax.plot([p[0] for p in curve], [p[1] for p in curve], label=f"round {n}")
                drawn = True
        ax.set_title("training loss per round", fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no round trained", ha="center", va="center", transform=ax.transAxes)

    return _figure_png(draw)


def render_outputs(result: SimulationResult) -> dict[str, bytes]:
    """File name -> bytes: the plots, the figures as JSON and the printed table."""
    figures = {**result.to_json(), "table": format_table(result)}
    return {
        "table1.png": table1_png(result),
        "model_jf.png": model_jf_png(result),
        "loss.png": loss_png(result),
        "figures.json": json.dumps(figures, indent=2, default=str).encode(),
        "table.txt": figures["table"].encode(),
    }


def write_outputs(result: SimulationResult, out_dir: Path | None = None) -> list[str]:
    """Write the outputs to default storage under ``simulation/<project_id>/`` of every phase's
    project (each project's rounds page shows them) and to ``out_dir``; the keys written."""
    outputs = render_outputs(result)
    keys = []
    for project_id in sorted(set(result.projects.values())):
        prefix = storage_prefix(project_id)
        for name, content in outputs.items():
            key = prefix + name
            if default_storage.exists(key):
                default_storage.delete(key)
            keys.append(default_storage.save(key, ContentFile(content)))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in outputs.items():
            (out_dir / name).write_bytes(content)
    return keys


def outputs_listing(keys: Sequence[str]) -> str:
    return "\n".join(f"  {key}" for key in keys)
