"""The simulated data engine: annotation batches in each phase, reviews, fixes and real training
rounds between batches, measured with the paper's Table 1 columns (DESIGN.md sections 5.8, 7).

:func:`run_simulation` sets up simulated users (a manager, an annotator, a reviewer), one project
per phase (the same procedural videos go to each, so the phases are compared on the same objects,
as the paper's Table 1 did) and a held-out pool of procedural videos for the model's J&F. Then,
per round:

1. a batch of new procedural videos is added to every phase's project; the simulated annotator
   takes them from the queue and annotates them in the project's phase protocol
   (:mod:`engine.simulation.annotators`); the simulated reviewer judges every submitted masklet
   against the ground truth (:mod:`engine.simulation.reviewers`); fixes go back to the annotator
   until every masklet is verified or rejected;
2. the batch's figures per phase: seconds per frame, % edited frames, clicks per clicked frame
   (simulated clock, :mod:`engine.simulation.timing`), cross-checked with the telemetry events the
   engine recorded, and the J&F of the final masklets against the ground truth;
3. a real training round on the last phase's project (:func:`engine.training.rounds.do_start_round`
   and :func:`~engine.training.rounds.run_round_job` in this process): it trains on the verified
   masklets, evaluates, and promotes the candidate only when it is better;
4. the promoted model's J&F on the held-out pool
   (:func:`engine.simulation.protocol.evaluate_model`).

With a *phase plan* (``SimulationConfig.phase_plan``, e.g. 1, 1, 3, 3, 3, 3) the engine runs as
the paper's did instead: one project, annotated in the plan's phase for each round (the manager
moves it on with :func:`engine.accounts.projects.do_set_phase`), whose rounds train on every
masklet verified so far, so phase 3 annotates with a model trained on the phase 1 data. The
phases are then compared over the rounds each ran in, as the paper's 8.4x was.

Jobs (propagation, training) run in this process: :func:`in_process_jobs` points the task sender
at :func:`keep_in_process`, so nothing is sent to a broker. The run uses the configured database
and storage, and it promotes model versions as the engine does; by default the version promoted
before the run is promoted again at the end.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from django.test.utils import override_settings
from django.utils import timezone

from engine.accounts.projects import (
    do_create_project,
    do_create_user,
    do_set_membership,
    do_set_phase,
)
from engine.annotation.sessions import CACHE
from engine.errors import Conflict
from engine.inference import registry
from engine.models import (
    ModelVersion,
    Project,
    Role,
    User,
)
from engine.simulation.annotators import AnnotatedObject, AnnotatorConfig, SimulatedAnnotator
from engine.simulation.measure import TruthCache, batch_figures, heldout_scores
from engine.simulation.reviewers import (
    ReviewerConfig,
    ReviewRecord,
    SimulatedReviewer,
)
from engine.simulation.timing import DEFAULT_TIMING, TimingModel

logger = logging.getLogger(__name__)

START_FROM = ("demo", "scratch", "promoted")
#: Fixes and re-reviews per batch before the run gives up on the queue (a safety stop).
MAX_REVIEW_PASSES = 6


@dataclass(frozen=True)
class SimulationConfig:
    """What ``manage.py simulate_engine`` runs; see the module docstring."""

    # the defaults are the README's run, but for the phases (all three here)
    phases: tuple[int, ...] = (1, 2, 3)
    rounds: int = 6
    #: The phase of each round on one project (the paper's sequence); empty: every phase in
    #: every round, on a project per phase (``phases`` and ``rounds``).
    phase_plan: tuple[int, ...] = ()
    videos_per_round: int = 12
    frames: int = 8
    size: int = 128
    objects: int = 1
    heldout_videos: int = 6
    #: steps a round: few enough that the gain spreads over the rounds of the default run (with
    #: a demo model that starts near 0.45, 30 steps took it to within 0.03 of its ceiling in
    #: round 1); the README's phase-plan runs use 30 (README, "The simulated data engine")
    train_steps: int = 16
    seed: int = 0
    start_from: str = "demo"
    #: Model config for ``start_from="scratch"``.
    scratch_config: str = "test_tiny"
    #: ``start_from="demo"``: the demo model's config and training steps (the recipe of
    #: ``engine.training.demo_model``, made once and cached).
    demo_config: str | None = None  # the recipe's default
    demo_steps: int | None = None  # the recipe's default
    #: Fine-tuning learning rates of the rounds (ROUND_BASE_LR / ROUND_VISION_LR): a model
    #: trained briefly learns from a few new masklets only at rates well above SAM 2's 5e-6.
    round_base_lr: float = 1e-4
    round_vision_lr: float = 5e-5  # as --round-lr sets it: half the base rate
    #: Further TrainConfig fields of the rounds (ROUND_TRAIN_OPTIONS): the IoU loss that keeps
    #: a briefly trained model's IoU head alive (``model.training.losses``) and a short warm-up.
    round_train_options: tuple[tuple[str, Any], ...] = (("iou_loss", "bce"), ("warmup_steps", 5))
    #: Share of the verified videos a round holds out to decide on promotion (sticky).
    round_holdout_fraction: float = 0.3
    #: torch intra-op threads (0: torch's default).
    threads: int = 0
    restore_promoted: bool = True
    annotator: AnnotatorConfig = field(default_factory=AnnotatorConfig)
    reviewer: ReviewerConfig = field(default_factory=ReviewerConfig)
    timing: TimingModel = DEFAULT_TIMING

    @property
    def round_count(self) -> int:
        return len(self.phase_plan) or self.rounds

    def round_batches(self, number: int, projects: dict[int, Project]) -> list[tuple[int, Project]]:
        """The (phase, project) batches of round ``number`` (from 1), in order."""
        if self.phase_plan:
            phase = self.phase_plan[number - 1]
            return [(phase, projects[phase])]
        return list(projects.items())

    @classmethod
    def quick(cls, **overrides: Any) -> SimulationConfig:
        """Seconds on CPU: one round, one 4-frame video with one object, a tiny random model."""
        base = cls(
            rounds=1,
            videos_per_round=2,
            frames=4,
            size=128,
            objects=1,
            heldout_videos=1,
            train_steps=1,
            start_from="scratch",
            # few clicks; strokes and fixes bring even a random model's masks to verified
            annotator=AnnotatorConfig(max_clicks=2, max_fix_frames=1, max_strokes=12),
            reviewer=ReviewerConfig(max_sendbacks=2, max_flags=4),
        )
        return replace(base, **overrides)


@dataclass
class PhaseBatch:
    """One phase's batch in one round: its masklets, reviews and the figures."""

    phase: int
    round: int
    objects: list[AnnotatedObject] = field(default_factory=list)
    reviews: list[ReviewRecord] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimulationResult:
    projects: dict[int, int]
    train_project_id: int
    model_scores: list[dict[str, Any]] = field(default_factory=list)
    batches: list[PhaseBatch] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "projects": {str(k): v for k, v in self.projects.items()},
            "train_project_id": self.train_project_id,
            "model_scores": self.model_scores,
            "batches": [b.figures for b in self.batches],
            "rounds": self.rounds,
            "wall_seconds": self.seconds,
        }


# --- jobs in this process ----------------------------------------------------------------------

SENT: list[tuple[str, list[Any], str]] = []


def keep_in_process(name: str, args: list[Any], queue: str) -> None:
    """A ``TASK_SENDER`` that sends nothing: the simulation runs its jobs itself."""
    SENT.append((name, list(args), queue))


@contextlib.contextmanager
def in_process_jobs(config: SimulationConfig) -> Iterator[None]:
    """Jobs run here (nothing sent), and the rounds' training settings of ``config``."""
    with override_settings(
        TASK_SENDER=f"{__name__}.keep_in_process",
        ANNOTATION_WARM_FRAMES=0,
        ROUND_BASE_LR=config.round_base_lr,
        ROUND_VISION_LR=config.round_vision_lr,
        ROUND_HOLDOUT_FRACTION=config.round_holdout_fraction,
        ROUND_TRAIN_OPTIONS=dict(config.round_train_options),
    ):
        yield


# --- set-up ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    manager: User
    annotator: User
    reviewer: User


def make_team(tag: str) -> Team:
    def user(role: str) -> User:
        return do_create_user(f"sim-{tag}-{role}", secrets.token_urlsafe(16), role)

    return Team(user(Role.MANAGER), user(Role.ANNOTATOR), user(Role.REVIEWER))


def make_projects(
    team: Team, tag: str, phases: tuple[int, ...], model_config: str
) -> dict[int, Project]:
    """A project per phase of ``phases``."""
    return {
        phase: make_project(team, f"Simulated engine {tag} · phase {phase}", phase, model_config)
        for phase in phases
    }


def make_project(team: Team, name: str, phase: int, model_config: str) -> Project:
    """A simulation project with the team's annotator and reviewer as members."""
    project = do_create_project(
        name,
        team.manager,
        phase=phase,
        description="Made by manage.py simulate_engine: simulated annotators and reviewers.",
        model_config=model_config,
    )
    do_set_membership(project, team.annotator, Role.ANNOTATOR)
    do_set_membership(project, team.reviewer, Role.REVIEWER)
    return project


def start_model(
    config: SimulationConfig, manager: User, tag: str, echo: Callable[[str], None] = logger.info
) -> ModelVersion | None:
    """Make sure a model serves: the demo model, a random one, or the one already promoted."""
    from engine.training import versions

    if config.start_from == "promoted":
        registry.resolve_model_spec()  # raises ModelNotConfigured with the how-to
        return versions.promoted_version()
    if config.start_from == "demo":
        from engine.training import demo_model

        recipe = demo_model.DemoRecipe()
        if config.demo_config is not None:
            recipe = replace(recipe, config=config.demo_config)
        if config.demo_steps is not None:
            recipe = replace(recipe, steps=config.demo_steps)
        promoted = versions.promoted_version()
        if promoted is not None and (promoted.metrics or {}).get("recipe") == asdict(recipe):
            return promoted
        # trained briefly on procedural videos once, cached (DEMO_MODEL_DIR), then promoted
        return demo_model._demo_model(recipe, say=echo)
    import torch

    from model.build import build_sam2
    from model.checkpoint import save_checkpoint

    torch.manual_seed(config.seed)
    net = build_sam2(config.scratch_config)
    with tempfile.TemporaryDirectory(prefix="sim-scratch-") as folder:
        path = Path(folder) / "scratch.pt"
        save_checkpoint(net, path)
        version = versions.do_register_checkpoint(
            manager,
            path,
            name=f"simulation {tag} · scratch {config.scratch_config}",
            config=config.scratch_config,
            metrics={"simulation": tag, "scratch": True},
        )
    return versions.do_promote(manager, version, reason="simulate_engine: start from scratch")


# --- the run -----------------------------------------------------------------------------------


def run_batch(
    phase_project: Project,
    team: Team,
    truth: TruthCache,
    config: SimulationConfig,
    batch: PhaseBatch,
) -> None:
    """Annotate, review and fix until the project's queues are empty."""
    annotator = SimulatedAnnotator(team.annotator, phase_project, truth, config.annotator)
    known: dict[int, AnnotatedObject] = {}
    reviewer = SimulatedReviewer(
        team.reviewer,
        phase_project,
        truth,
        lambda masklet: known[masklet.pk].gt_index,
        config.reviewer,
        config.timing,
    )
    for _ in range(MAX_REVIEW_PASSES):
        worked = False
        while annotator.work_next(known) is not None:
            worked = True
        reviews = reviewer.review_all()
        batch.reviews.extend(reviews)
        if not worked and not reviews:
            break
    batch.objects = list(known.values())
    CACHE.clear()


def run_simulation(
    config: SimulationConfig,
    *,
    echo: Callable[[str], None] = logger.info,
    write_outputs: Callable[[SimulationResult], None] | None = None,
) -> SimulationResult:
    """Run the simulated engine (see the module docstring); the figures of every round."""
    from engine.simulation.procedural import ProceduralSpec, make_videos
    from engine.simulation.videos import add_procedural_video
    from engine.training import rounds, versions

    if config.start_from not in START_FROM:
        raise ValueError(f"start_from is one of {', '.join(START_FROM)}")
    started = time.monotonic()
    tag = f"{config.seed}-{timezone.now():%Y%m%d%H%M%S}"
    spec = ProceduralSpec(
        num_frames=config.frames,
        height=config.size,
        width=config.size,
        num_objects=config.objects,
        reappear=config.frames >= 8,  # leaving and coming back needs a few frames
    )
    if config.threads > 0:
        import torch

        torch.set_num_threads(config.threads)
    with in_process_jobs(config):
        before = versions.promoted_version()
        team = make_team(tag)
        model = start_model(config, team.manager, tag, echo)
        config_name = model.config if model is not None else registry.resolve_model_spec().config
        if config.phase_plan:
            plan = ",".join(map(str, config.phase_plan))
            single = make_project(
                team, f"Simulated engine {tag} · phases {plan}", config.phase_plan[0], config_name
            )
            projects = dict.fromkeys(config.phase_plan, single)
            train_project = single
        else:
            projects = make_projects(team, tag, config.phases, config_name)
            train_project = projects[config.phases[-1]]
        result = SimulationResult({p: pr.pk for p, pr in projects.items()}, train_project.pk)
        heldout = [
            (v.frames, v.masks)
            for v in make_videos(10_000 + config.seed, config.heldout_videos, spec)
        ]
        truth = TruthCache()
        try:
            score = heldout_scores(heldout)
            result.model_scores.append({"after_round": 0, **score})
            echo(f"model before round 1: {score['model']}: held-out {_scores_line(score)}")
            for number in range(1, config.round_count + 1):
                first_seed = config.seed * 100_000 + number * 1_000
                videos = make_videos(first_seed, config.videos_per_round, spec)
                for phase, project in config.round_batches(number, projects):
                    if project.phase != phase:
                        do_set_phase(team.manager, project, phase)
                    for video in videos:
                        add_procedural_video(
                            project,
                            video,
                            name=f"procedural-{video.seed}.mp4",
                            uploaded_by=team.manager,
                        )
                    batch = PhaseBatch(phase=phase, round=number)
                    run_batch(project, team, truth, config, batch)
                    batch.figures = batch_figures(batch, truth, config.timing)
                    batch.figures["model"] = score["model"]
                    batch.figures["model_jf"] = score.get("jf_3")
                    result.batches.append(batch)
                    echo(_batch_line(batch.figures))
                job = rounds.do_start_round(
                    team.manager, train_project, steps=config.train_steps, reason="simulate_engine"
                )
                try:
                    rounds.run_round_job(job.pk)
                except Exception:  # the job row records it; the engine goes on with its model
                    logger.exception("training round of job %s failed", job.pk)
                job.refresh_from_db()
                summary = _round_summary(job)
                result.rounds.append(summary)
                echo(
                    f"round {number}: training job {job.status}; "
                    f"{summary.get('reason') or summary.get('error') or job.error}"
                )
                score = heldout_scores(heldout)
                result.model_scores.append({"after_round": number, **score})
                echo(
                    f"model after round {number}: {score['model']}: held-out {_scores_line(score)}"
                )
        finally:
            result.seconds = time.monotonic() - started
            if write_outputs is not None:
                write_outputs(result)
            if config.restore_promoted and before is not None:
                current = versions.promoted_version()
                if current is None or current.pk != before.pk:
                    with contextlib.suppress(Conflict):
                        versions.do_promote(
                            team.manager, before, reason="simulate_engine: restored after the run"
                        )
            CACHE.clear()
    return result


def _round_summary(job: Any) -> dict[str, Any]:
    from engine.models import Round
    from engine.training import rounds

    round_ = Round.objects.filter(job=job).first()
    if round_ is None:
        return {"status": str(job.status), "error": job.error}
    return rounds.round_summary(round_)


def _scores_line(score: dict[str, Any]) -> str:
    keys = ("jf_1", "jf_3", "jf_5", "jf_mask", "clicks_to_075")
    return ", ".join(f"{k} {score[k]:.3f}" for k in keys if isinstance(score.get(k), float | int))


def _batch_line(f: dict[str, Any]) -> str:
    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    return (
        f"round {f['round']} phase {f['phase']}: {num(f['seconds_per_frame'], '.2f')} s/frame, "
        f"{num(f['edited_frames_pct'], '.1f')}% edited, "
        f"{num(f['clicks_per_clicked_frame'], '.2f')} clicks/clicked frame, "
        f"data J&F {num(f['data_jf'], '.3f')}, verdicts {f['verdicts']}, "
        f"telemetry agrees: {f['telemetry']['agree']}"
    )
