"""Request/reply through a real worker on Redis (``workers.dispatch.call_task``): a worker that
started a slow task is waited for, while a queue nobody serves fails fast as ``NoReply``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.jobs.dispatch import NoReply
from tests._services import celery_worker, worker_env
from workers.dispatch import call_task

QUEUE = "calltest"


@pytest.mark.django_db(transaction=True)
def test_a_started_slow_task_is_waited_for_and_an_unserved_queue_fails_fast(
    redis_results: str, tmp_path: Path
) -> None:
    env = worker_env(redis_results, tmp_path)
    log = tmp_path / "worker.log"
    with celery_worker(env, log, QUEUE, extra_args=("--include", "tests.workers._slow_task")):
        # warm-up: the worker is up once it answers a quick call
        deadline = time.monotonic() + 60
        while True:
            try:
                assert call_task("tests.slow_echo", [0, "up"], QUEUE, 5.0, 5.0) == "up"
                break
            except NoReply:
                assert time.monotonic() < deadline, log.read_text()
        # a task that starts at once but answers after 2 s: the 0.5 s pickup bound does not
        # cut it short, because the worker has started it
        started = time.monotonic()
        assert call_task("tests.slow_echo", [2.0, "slow"], QUEUE, 20.0, 0.5) == "slow"
        assert time.monotonic() - started >= 2.0
        # nobody serves this queue: NoReply after the pickup bound, not the whole timeout
        started = time.monotonic()
        with pytest.raises(NoReply):
            call_task("tests.slow_echo", [0, "lost"], "nobody-serves-this", 20.0, 0.5)
        assert time.monotonic() - started < 5.0
