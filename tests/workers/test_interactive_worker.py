"""Real Celery workers on Redis: clicks go to the interactive worker holding the session; after
that worker is killed (SIGKILL) the next click is served by another worker that rebuilt the
session by replaying the saved prompts (a propagation run included), with the same masks."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.annotation.sessions import _new_video_session, apply_op, session_ops
from engine.inference import registry
from engine.masks.rle import decode_rle
from engine.models import DraftEdit, Job, Masklet, ModelSession
from tests._clients import api_client
from tests._services import celery_worker, wait_for_status, worker_env
from tests.engine.annotation._serving import clip_video, promote_tiny_model


def _click(client: Any, masklet_id: int, frame: int, points: list[Any], labels: list[int]) -> Any:
    version = Masklet.objects.get(pk=masklet_id).draft_version
    body = {"base_version": version, "frame_index": frame, "tool": "video_click"}
    body.update(points=points, labels=labels, box=None)
    answer = client.post(
        f"/api/masklets/{masklet_id}/prompt/", json.dumps(body), content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    return answer.json()


def _replay_check(masklet: Masklet) -> int:
    """Replay the saved log in a fresh session in this process: every click's mask must equal
    the one saved by the workers; returns how many clicks were compared."""
    session = _new_video_session(masklet.video, registry.load_model())
    checked = 0
    for op in session_ops(masklet.video):
        if op.kind != "points":
            apply_op(session, op)
            continue
        result = session.add_points(
            op.frame_index, op.obj_id, np.asarray(op.points), np.asarray(op.labels)
        )
        mask = result.logits[result.obj_ids.index(op.obj_id), 0].numpy() > 0
        saved = DraftEdit.objects.get(pk=op.key[0]).rle
        assert saved is not None
        assert np.array_equal(decode_rle(saved), mask), f"click {op.key} differs on replay"
        checked += 1
    session.close()
    return checked


WARMED = r"Task workers\.annotation_warm\[[^]]+\] succeeded in [^:]+: (\d+)"


@pytest.mark.django_db(transaction=True)
def test_killed_interactive_worker_is_replaced_by_a_rebuilt_session(
    project: Any, annotator: Any, redis_results: str, tmp_path: Path, settings: Any
) -> None:
    # given: a promoted tiny model, a leased clip with one object, two workers on Redis
    settings.SAM2_CACHE_DIR = str(tmp_path / "model-cache")
    settings.SAM2_CHECKPOINT = ""
    settings.SAM2_DEVICE = "cpu"
    settings.ANNOTATION_DIRECT_TIMEOUT_SECONDS = 3.0
    settings.ANNOTATION_PROMPT_TIMEOUT_SECONDS = 120.0
    settings.ANNOTATION_WARM_FRAMES = 0
    promote_tiny_model(tmp_path)
    clip_video(project)
    client = api_client(annotator)
    lease = client.post("/api/annotation/next/", {"project": project.pk}, format="json").json()
    masklet_id = client.post(f"/api/annotation/leases/{lease['id']}/objects/", {}).json()["id"]
    env = worker_env(
        redis_results,
        tmp_path,
        MEDIA_ROOT=settings.MEDIA_ROOT,
        OMP_NUM_THREADS="1",
        SAM2_DEVICE="cpu",
    )
    first_log, second_log = tmp_path / "interactive-1.log", tmp_path / "interactive-2.log"
    with celery_worker(env, tmp_path / "propagate.log", "propagate", extra_args=("-n", "prop@%h")):
        with celery_worker(env, first_log, "interactive", extra_args=("-n", "inter1@%h")) as first:
            # when: clicks, a propagation, and a correction on a tracked frame
            _click(client, masklet_id, 0, [[20, 30]], [1])
            route = ModelSession.objects.get(user=annotator)
            assert route.worker.startswith("inter1@"), route.worker
            assert route.queue == f"{route.worker}.dq2"
            _click(client, masklet_id, 0, [[20, 30], [50, 50]], [1, 0])
            # the page's cursor rests on frame 5: the session's worker embeds it (direct queue)
            warm = client.post(
                f"/api/annotation/leases/{lease['id']}/warm/", {"frame_index": 5}, format="json"
            )
            assert warm.status_code == 202, warm.content
            assert warm.json() == {"sent": True}
            deadline = time.monotonic() + 60
            while "Task workers.annotation_warm[" not in first_log.read_text():
                assert time.monotonic() < deadline, "the warm-up never reached the worker"
                time.sleep(0.2)
            version = Masklet.objects.get(pk=masklet_id).draft_version
            job_json = client.post(
                f"/api/masklets/{masklet_id}/propagate/",
                {"base_version": version, "start_frame": 0, "direction": "forward"},
                format="json",
            ).json()["job"]
            job = Job.objects.get(pk=job_json["id"])
            wait_for_status(job, (Job.Status.SUCCEEDED, Job.Status.FAILED), timeout=120)
            assert job.status == Job.Status.SUCCEEDED, (job.error, job.worker)
            assert job.worker
            # the cursor rests on tracked frame 3 with the object selected: the worker prepares
            # the correction there too
            warm = client.post(
                f"/api/annotation/leases/{lease['id']}/warm/",
                {"frame_index": 3, "masklet_id": masklet_id},
                format="json",
            )
            assert warm.json() == {"sent": True}
            while len(re.findall(WARMED, first_log.read_text())) < 2:
                assert time.monotonic() < deadline + 120, "the second warm-up never ran"
                time.sleep(0.2)
            _click(client, masklet_id, 3, [[45, 30]], [1])
            # the interactive worker is killed
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=20)
        with celery_worker(env, second_log, "interactive", extra_args=("-n", "inter2@%h")):
            started = time.monotonic()
            rebuilt = _click(client, masklet_id, 4, [[55, 30]], [1])
            waited = time.monotonic() - started
    # every model worker loaded the model when it started; the propagate worker, idle until
    # the propagation, before its first job (a click queued before a worker was ready comes
    # first on its queue)
    for log in (tmp_path / "propagate.log", first_log, second_log):
        assert "model warm-up: test_tiny loaded" in log.read_text(), log.name
    assert re.findall(WARMED, first_log.read_text()) == ["1", "1"]
    text = (tmp_path / "propagate.log").read_text()
    assert text.index("Task workers.model_warm[") < text.index("Task workers.propagate_masklet[")
    # then: the second worker served it (after the dead worker's queue timed out)...
    route = ModelSession.objects.get(user=annotator)
    assert route.worker.startswith("inter2@"), route.worker
    assert waited >= 3.0
    assert "workers.annotation_prompt" in second_log.read_text()
    assert rebuilt["rle"] is not None
    # ...by a session rebuilt from the saved prompts: every saved click replays exactly here
    masklet = Masklet.objects.select_related("video").get(pk=masklet_id)
    assert _replay_check(masklet) == 4
    propagated = DraftEdit.objects.filter(masklet=masklet, source="propagated")
    assert sorted(propagated.values_list("frame_index", flat=True)) == [0, 1, 2, 3, 4, 5]
