"""A request/reply call whose message expired before any worker started it is ``NoReply`` (503,
or the click's fall-back to the shared queue), never an unhandled ``TaskRevokedError`` (500).

Found by ``benchmarks/bench_load.py``: with 16 annotators on one interactive worker, the session
worker took a click's message just after its pickup bound, discarded it as expired (a worker
stores the state REVOKED, reason "expired", in the result backend) and the waiting web request
raised ``TaskRevokedError`` instead of falling back: a 500 on ``/api/masklets/<id>/prompt/``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine.jobs.dispatch import NoReply
from workers.dispatch import call_task


def test_a_message_discarded_as_expired_is_no_reply(
    redis_results: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.celery import app

    send_task = app.send_task
    timers: list[threading.Timer] = []

    def send_then_expire(*args: Any, **kwargs: Any) -> Any:
        result = send_task(*args, **kwargs)
        # what a worker does with a message it takes after its expiry (celery.worker.request:
        # Request.revoked -> backend.mark_as_revoked(id, "expired")), while the caller waits
        timer = threading.Timer(0.3, app.backend.mark_as_revoked, args=(result.id, "expired"))
        timer.start()
        timers.append(timer)
        return result

    monkeypatch.setattr(app, "send_task", send_then_expire)
    with pytest.raises(NoReply, match="expired"):
        call_task("tests.slow_echo", [0, "late"], "nobody-serves-this", 20.0, 5.0)
    for timer in timers:
        timer.join()
