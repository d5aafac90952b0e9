"""Training tasks: a real Celery worker takes a round's job from the train queue (and reports
why this project cannot train yet); the trigger sweep starts due rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.models import Job, Round
from tests._services import wait_for_status
from workers.tasks import training


@pytest.mark.django_db
def test_the_sweep_task_starts_due_rounds(project, manager, settings) -> None:
    from engine.training import triggers

    settings.TASK_SENDER = "tests.platform.test_training_api.drop_send"
    triggers.do_update_round_settings(
        manager, project, enabled=True, min_new_masklets=0, interval_hours=1
    )
    started = training.start_due_rounds.run()
    assert [j.pk for j in Job.objects.filter(kind="train", project=project)] == started
    assert training.start_due_rounds.run() == []


@pytest.fixture
def _single_thread_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_single_thread_worker")
def test_a_real_worker_runs_a_round_job_from_the_train_queue(
    project: Any, manager: Any, annotator: Any, reviewer: Any, tmp_path: Path, live_worker: Any
) -> None:
    from engine.training import rounds
    from tests.engine.training._round_data import verified_procedural_videos

    verified_procedural_videos(project, annotator, reviewer, 1)
    job = rounds.do_start_round(manager, project, steps=1)
    finished = (Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.CANCELLED)
    wait_for_status(job, finished, timeout=120)
    log = (tmp_path / "worker.log").read_text()
    assert "workers.train_round" in log
    assert job.status == Job.Status.FAILED, log[-3000:]
    assert "at least two videos" in job.error
    assert job.worker
    round_ = Round.objects.get(job=job)
    assert (round_.number, round_.metrics["status"]) == (1, "failed")
