"""A real Celery worker on Redis runs the ingest task; frames land in a real S3 server.

The database is whatever the run uses (PostgreSQL in CI via DATABASE_URL); the worker is a
separate process that shares this test run's database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.models import Job, Video
from engine.videos.ingest import do_upload_video
from tests._services import run_worker_until, worker_env


@pytest.mark.django_db(transaction=True)
def test_worker_on_redis_ingests_real_clip_into_s3(
    project, cup_clip, s3_server, s3_storage, redis_broker, tmp_path: Path
):
    # given an accepted upload stored in S3; its commit sent the ingest task to Redis
    with cup_clip.open("rb") as fh:
        video = do_upload_video(project, project.created_by, "cup.mp4", fh, cup_clip.stat().st_size)
    job = Job.objects.get(video=video)
    client = s3_server.client()
    assert [o["Key"] for o in client.list_objects_v2(Bucket=s3_storage)["Contents"]] == [
        f"videos/{video.pk}/source/cup.mp4"
    ]
    env = worker_env(redis_broker, tmp_path, **s3_server.env(s3_storage))
    # when a real worker on Redis picks it up
    finished = (Video.Status.READY, Video.Status.FAILED)
    log = run_worker_until(video, finished, env=env, workdir=tmp_path, timeout=90)
    # then
    assert video.status == Video.Status.READY, (video.error, log[-3000:])
    assert video.frame_count == 49  # 8.104 s x 6 fps
    keys = sorted(
        o["Key"]
        for o in client.list_objects_v2(Bucket=s3_storage, Prefix=f"videos/{video.pk}/frames/")[
            "Contents"
        ]
    )
    assert keys == [f"videos/{video.pk}/frames/{i:06d}.jpg" for i in range(49)]
    body = client.get_object(Bucket=s3_storage, Key=keys[0])["Body"].read()
    assert body[:2] == b"\xff\xd8"
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.worker
    assert job.heartbeat_at is not None
    assert "workers.ingest_video" in log


@pytest.mark.django_db(transaction=True)
def test_import_command_reads_an_s3_prefix(
    project,
    small_clip,
    s3_server,
    s3_storage,
    redis_broker,
    tmp_path: Path,
):
    from django.core.management import call_command

    client = s3_server.client()
    client.put_object(Bucket=s3_storage, Key="incoming/a.mp4", Body=small_clip.read_bytes())
    client.put_object(Bucket=s3_storage, Key="incoming/notes.txt", Body=b"hello")
    client.put_object(Bucket=s3_storage, Key="incoming/deeper/b.mp4", Body=small_clip.read_bytes())
    call_command("import_videos", str(project.pk), f"s3://{s3_storage}/incoming")
    videos = {v.name: v for v in Video.objects.filter(project=project)}
    assert set(videos) == {"a.mp4", "notes.txt"}  # no recursion into deeper/
    assert videos["a.mp4"].status == Video.Status.UPLOADED
    assert videos["notes.txt"].status == Video.Status.FAILED
    assert "Not a readable video file" in videos["notes.txt"].error
    import redis

    assert redis.Redis.from_url(redis_broker).llen("default") == 1  # one ingest task queued
