"""Celery beat embedded in a real worker (`-B`, as `make run` starts it) resends a job whose
task message was lost, and the worker then runs it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.utils import timezone

from engine.models import Job, Video
from engine.videos.ingest import do_upload_video
from tests._services import run_worker_until, worker_env


@pytest.mark.django_db(transaction=True)
def test_beat_resends_a_lost_ingest_message(
    project, small_clip, redis_broker, settings, tmp_path: Path
):
    # given an upload whose ingest message the broker lost, ten minutes ago
    with small_clip.open("rb") as fh:
        video = do_upload_video(project, None, "pattern.mp4", fh, small_clip.stat().st_size)
    job = Job.objects.get(video=video)
    redis.Redis.from_url(redis_broker).flushdb()
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    env = worker_env(
        redis_broker,
        tmp_path,
        MEDIA_ROOT=settings.MEDIA_ROOT,
        JOB_RECOVERY_INTERVAL_SECONDS="5",
        JOB_STALE_SECONDS="60",
    )
    # when a worker with embedded beat runs
    finished = (Video.Status.READY, Video.Status.FAILED)
    log = run_worker_until(
        video, finished, env=env, workdir=tmp_path, timeout=90, extra_args=("-B",)
    )
    # then its sweep resent the task and the video was decoded
    assert video.status == Video.Status.READY, (video.status, video.error, log[-3000:])
    assert f"orphaned jobs recovered: {{'resent': [{job.pk}]" in log
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.attempt == 1
    # beat keeps its schedule in DATA_DIR
    kept = [p.name for p in (tmp_path / "worker-data").iterdir()]
    assert any(name.startswith("celerybeat-schedule") for name in kept), kept
