"""Figures of one step from locust's statistics and the CPU readings, as printed tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The order of the kinds in the tables (others follow, by name).
KINDS = (
    "click",
    "propagate start",
    "propagate (start to done)",
    "draft save",
    "frame fetch",
    "review page",
    "review data (RLE)",
    "verdict",
)


@dataclass
class Kind:
    name: str
    count: int
    failures: int
    p50: float
    p95: float
    p99: float


@dataclass
class Step:
    """One step: N annotators and M reviewers for ``seconds``."""

    annotators: int
    reviewers: int
    seconds: float
    total: Kind
    kinds: list[Kind]
    errors: list[str]
    cpu: dict[str, float] = field(default_factory=dict)  # cores used (CPU seconds / seconds)
    peaks: dict[str, float] = field(default_factory=dict)  # highest gauge readings
    busy: dict[str, float] = field(default_factory=dict)  # fraction of the step in tasks

    @property
    def rate(self) -> float:
        return self.total.count / self.seconds


def _kind(name: str, entry: Any) -> Kind:
    def q(p: float) -> float:
        return float(entry.get_response_time_percentile(p) or 0.0)

    return Kind(name, entry.num_requests, entry.num_failures, q(0.5), q(0.95), q(0.99))


def snapshot(stats: Any, annotators: int, reviewers: int, seconds: float) -> Step:
    """The step's figures from a locust ``RequestStats`` (read before the users stop)."""
    kinds = [_kind(name, entry) for (name, _method), entry in stats.entries.items()]
    order = {name: n for n, name in enumerate(KINDS)}
    kinds.sort(key=lambda k: (order.get(k.name, len(KINDS)), k.name))
    errors = [f"{e.occurrences}x {e.name}: {e.error}" for e in stats.errors.values()]
    total = _kind("all", stats.total)
    return Step(annotators, reviewers, seconds, total, kinds, errors)


def cpu_use(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {k: (after[k] - before.get(k, 0.0)) / seconds for k in after}


def step_lines(step: Step) -> list[str]:
    per = step.total
    lines = [
        f"N={step.annotators} annotators, M={step.reviewers} reviewers: "
        f"{step.rate:.1f} req/s sustained, p50/p95/p99 {per.p50:.0f}/{per.p95:.0f}/{per.p99:.0f}"
        f" ms, {per.failures} errors of {per.count}",
        f"  {'kind':<27} {'count':>6} {'per s':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
        f" {'errors':>6}",
    ]
    for k in step.kinds:
        lines.append(
            f"  {k.name:<27} {k.count:>6} {k.count / step.seconds:>6.2f} {k.p50:>7.0f}"
            f" {k.p95:>7.0f} {k.p99:>7.0f} {k.failures:>6}"
        )
    if step.cpu:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in step.cpu.items())
        lines.append(f"  CPU (cores): {parts}")
    if step.busy:
        lines.append("  workers: " + ", ".join(f"{k} {v:.0%}" for k, v in step.busy.items()))
    if step.peaks:
        lines.append("  peaks: " + ", ".join(f"{k} {v:g}" for k, v in step.peaks.items()))
    lines += [f"  error: {e}" for e in step.errors[:10]]
    return lines


def _worker(step: Step) -> str:
    """The busiest Celery worker of the step, as "name N%"."""
    if not step.busy:
        return "?"
    name = max(step.busy, key=lambda k: step.busy[k])
    return f"{name.removesuffix(' busy')} {step.busy[name]:.0%}"


def summary_lines(steps: list[Step], database: str, cores: int) -> list[str]:
    """One line per step, then where the annotators' work rate falls (clicks per second per
    annotator under 70% of the first step's: they wait on the stack instead of working) and
    what is saturated there: the busiest worker (a queue served one task at a time: busy near
    100% means its queue grows), each part's CPU, the machine."""
    lines = [
        f"summary ({database}): N, req/s, clicks/s, clicks/s per annotator (% of the first "
        "step), click p50/p95/p99 ms, propagation start-to-done p50 ms, errors, busiest worker, "
        f"machine CPU busy (of {cores} cores), peak load average",
    ]
    first, falls = 0.0, None
    for step in steps:
        by = {k.name: k for k in step.kinds}
        click = by.get("click", Kind("click", 0, 0, 0, 0, 0))
        done = by.get("propagate (start to done)", Kind("", 0, 0, 0, 0, 0))
        clicks = click.count / step.seconds
        each = clicks / max(1, step.annotators)
        first = first or each
        share = each / first if first else 0.0
        lines.append(
            f"  N={step.annotators:<3} {step.rate:>6.1f} req/s {clicks:>5.2f} clicks/s"
            f" {each:>5.2f} ({share:>4.0%}) {click.p50:>6.0f}/{click.p95:>6.0f}/{click.p99:>6.0f}"
            f" ms  prop {done.p50:>6.0f} ms {step.total.failures:>3} errors  {_worker(step)}"
            f"  busy {step.cpu.get('machine', 0):.2f}  load {step.peaks.get('load avg', 0):.1f}"
        )
        if falls is None and first and share < 0.7:
            falls = step
    lines += cost_lines(steps)
    best = max(steps, key=lambda s: s.rate)
    lines.append(f"  peak request rate {best.rate:.1f} req/s at N={best.annotators}")
    if falls is None:
        lines.append(f"  the annotators' work rate holds up to N={steps[-1].annotators}")
        return lines
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in falls.cpu.items())
    lines.append(
        f"  the annotators' work rate falls at N={falls.annotators}: busiest worker "
        f"{_worker(falls)}; CPU cores {cpu}"
    )
    return lines


def cost_lines(steps: list[Step]) -> list[str]:
    """CPU per operation over all steps (CPU seconds of a part over the operations it served):
    what bounds each part's rate on an idle machine, whatever else the machine runs now."""

    def total(kind: str) -> int:
        return sum(k.count for step in steps for k in step.kinds if k.name == kind)

    def cpu(part: str) -> float:
        return sum(step.cpu.get(part, 0.0) * step.seconds for step in steps)

    requests = sum(step.total.count for step in steps)
    clicks, propagations = total("click"), total("propagate start")
    lines = ["  CPU per operation (all steps):"]
    if requests:
        web = cpu("web") / requests
        lines.append(
            f"    web {1000 * web:.0f} ms per request (at most {1 / web:.0f} req/s a core)"
        )
    if clicks:
        per = cpu("interactive") / clicks
        lines.append(
            f"    interactive worker {1000 * per:.0f} ms per click (at most {1 / per:.1f}"
            " clicks/s a worker process)"
        )
    if propagations:
        per = cpu("propagate") / propagations
        lines.append(
            f"    propagate worker {per:.2f} s per propagation of the whole video (at "
            f"most {60 / per:.0f} a minute a worker process)"
        )
    if requests and "postgres*" in steps[0].cpu:
        lines.append(
            f"    PostgreSQL (server-wide) {1000 * cpu('postgres*') / requests:.0f} ms per request"
        )
    return lines
