"""The auto-masklets task: pinned name and queue, and a real Celery worker running a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.jobs.lifecycle import JOB_TASKS
from engine.models import Job, Masklet, ModelVersion, Video
from tests._services import wait_for_status
from workers.celery import app


def test_task_is_registered_under_its_pinned_name_on_the_propagate_queue() -> None:
    app.loader.import_default_modules()
    assert "workers.auto_masklets" in app.tasks
    assert JOB_TASKS[Job.Kind.AUTO_MASKLETS] == ("workers.auto_masklets", "propagate")


@pytest.fixture
def _single_thread_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker process inherits this: one torch thread (a shared 2-core machine)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_single_thread_worker")  # before live_worker starts the process
def test_real_worker_runs_an_auto_masklet_job(
    project: Any, small_clip: Path, tmp_path: Path, live_worker: Any
) -> None:
    from engine.auto_masklets.generate import do_start_auto_masklets
    from engine.inference import registry
    from engine.videos import ingest
    from tests.engine.test_auto_masklets import SMALL_GRID, tiny_checkpoint

    # given: a promoted tiny model in storage and the clip ingested by the worker
    version = ModelVersion.objects.create(
        name="tiny", config="test_tiny", status=ModelVersion.Status.PROMOTED
    )
    registry.store_checkpoint_for_version(version, tiny_checkpoint(tmp_path / "m.pt"))
    with small_clip.open("rb") as fh:
        video = ingest.do_upload_video(
            project, project.created_by, "pattern.mp4", fh, small_clip.stat().st_size
        )
    wait_for_status(video, (Video.Status.READY, Video.Status.FAILED), timeout=120)
    assert video.status == Video.Status.READY, video.error
    # when: the job is queued (sent to the propagate queue on commit)
    job = do_start_auto_masklets(video, project.created_by, SMALL_GRID)
    finished = (Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.CANCELLED)
    wait_for_status(job, finished, timeout=240)
    # then
    log = (tmp_path / "worker.log").read_text()
    assert job.status == Job.Status.SUCCEEDED, (job.error, log[-3000:])
    assert "workers.auto_masklets" in log
    assert job.worker
    assert job.progress == 1.0
    masklets = Masklet.objects.filter(video=video, kind=Masklet.Kind.AUTO)
    assert masklets.count() == len(job.result["masklet_ids"]) >= 1
    assert set(masklets.values_list("status", flat=True)) == {Masklet.Status.SUBMITTED}
