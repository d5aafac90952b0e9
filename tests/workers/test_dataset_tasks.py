"""Export and import tasks: called directly, and an export run by a real Celery worker on Redis."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from engine.datasets.export import do_start_export, export_key
from engine.datasets.importing import import_path
from engine.jobs.lifecycle import JOB_TASKS, do_request_cancel
from engine.models import Job
from engine.videos import storage
from tests._services import run_worker_until, worker_env
from workers.tasks.datasets import run_export, run_import

EXAMPLE = Path(__file__).parents[1] / "engine" / "data" / "sav_example"


def test_task_names_match_the_job_table() -> None:
    assert run_export.name == JOB_TASKS[Job.Kind.EXPORT][0] == "workers.run_export"
    assert run_import.name == JOB_TASKS[Job.Kind.IMPORT][0] == "workers.run_import"


@pytest.mark.django_db
def test_export_task_rerun_overwrites_the_same_key(project, manager) -> None:
    import_path(project, EXAMPLE, author=manager, status="verified")
    job = do_start_export(project, user=manager, fmt="sav")
    run_export(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    key = job.result["key"]
    assert key == export_key(job.pk, job.result["filename"])
    assert key.startswith(f"exports/{job.pk}/")
    assert job.result["masklets"] == 14
    assert job.result["masks"] == 14 * 121
    first = storage.read_bytes(key)
    # a redelivered message for a finished job does nothing; a requeued one rewrites the key
    run_export(job.pk)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
    run_export(job.pk)
    job.refresh_from_db()
    assert job.attempt == 2
    assert job.status == Job.Status.SUCCEEDED
    assert list(storage.iter_keys(f"exports/{job.pk}/")) == [key]
    with (
        zipfile.ZipFile(io.BytesIO(first)) as a,
        zipfile.ZipFile(io.BytesIO(storage.read_bytes(key))) as b,
    ):
        assert a.read("sav_000001_manual.json") == b.read("sav_000001_manual.json")


@pytest.mark.django_db
def test_cancelled_export_writes_nothing(project, manager) -> None:
    import_path(project, EXAMPLE, author=manager, status="verified")
    job = do_start_export(project, user=manager, fmt="davis")
    do_request_cancel(manager, job)
    run_export(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert list(storage.iter_keys(f"exports/{job.pk}/")) == []


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_real_worker_on_redis_exports_into_s3(
    project, manager, s3_server, s3_storage, redis_broker, tmp_path: Path
):
    # given the SA-V example in the database and an export job sent to Redis on commit
    import_path(project, EXAMPLE, author=manager, status="verified")
    job = do_start_export(project, user=manager, fmt="sav")
    env = worker_env(redis_broker, tmp_path, **s3_server.env(s3_storage))
    # when a real worker process picks it up
    finished = (Job.Status.SUCCEEDED, Job.Status.FAILED)
    log = run_worker_until(job, finished, env=env, workdir=tmp_path, timeout=120)
    # then the zip is in the bucket under the job's key and holds both SA-V files
    assert job.status == Job.Status.SUCCEEDED, (job.error, log[-3000:])
    assert "workers.run_export" in log
    assert job.worker
    assert job.progress == 1.0
    body = s3_server.client().get_object(Bucket=s3_storage, Key=job.result["key"])["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        manual = json.loads(zf.read("sav_000001_manual.json"))
    original = json.loads((EXAMPLE / "sav_000001_manual.json").read_text())
    assert manual["masklet_size_abs"] == original["masklet_size_abs"]
    assert manual["masklet"][60] == original["masklet"][60]
