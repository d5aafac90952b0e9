"""The platform through outages of its services: requests while the database is unreachable get
a JSON 503 (not a 500 page), a job started while the broker is down is kept and sent again by
the recovery sweep, a sender keeps sending after Redis restarts, and a worker reconnects to a
restarted Redis and runs the jobs sent after it. Redis here is a private ``redis-server`` that
the tests kill and start again; the full restart runs are ``benchmarks/bench_faults.py``."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import RequestFactory

from dataengine import outage
from engine.jobs.recovery import do_recover_orphaned_jobs
from engine.models import Job
from tests._clients import api_client, web_client
from tests._services import celery_worker, free_port, wait_for_port, wait_for_status, worker_env

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


class PrivateRedis:
    """A ``redis-server`` of this test only, on a free port, without persistence."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(self.port, timeout=10)

    def kill(self) -> None:
        """SIGKILL, as in a crash: every queued message is lost."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    yield server
    server.kill()


@pytest.fixture
def broker(private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process sends to the private Redis and keeps its results there (fresh pools)."""
    from workers.celery import app

    previous = app.conf.broker_url, app.conf.result_backend
    monkeypatch.setenv("CELERY_BROKER_URL", private_redis.url)
    app.conf.broker_url = app.conf.result_backend = private_redis.url
    _fresh_pools(app)
    yield private_redis.url
    app.conf.broker_url, app.conf.result_backend = previous
    _fresh_pools(app)


def _fresh_pools(app: Any) -> None:
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local.backend = None


def _queued(url: str, queue: str = "default") -> list[bytes]:
    messages = redis.Redis.from_url(url).lrange(queue, 0, -1)
    return [m.encode() if isinstance(m, str) else m for m in messages]


# --- the web while the database is unreachable --------------------------------------------------


@pytest.mark.django_db
def test_api_and_pages_answer_503_while_the_database_is_unreachable(
    project: Any, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, web = api_client(manager), web_client(manager)
    assert api.get(f"/api/projects/{project.pk}/").status_code == 200
    refused: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        refused.append("query")
        raise OperationalError("connection failed: Connection refused")

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", refuse)
    # the API: JSON with the reason, and when to try again
    response = api.get(f"/api/projects/{project.pk}/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "the database is unavailable for a moment; try again in a few seconds",
        "code": "unavailable",
    }
    assert response["Retry-After"] == "5"
    # a write through the API, too
    response = api.post(f"/api/projects/{project.pk}/exports/", {"format": "sav"}, format="json")
    assert (response.status_code, response.json()["code"]) == (503, "unavailable")
    # a page: a plain 503 page (no template: it would need the database)
    page = web.get(f"/projects/{project.pk}/")
    assert page.status_code == 503
    assert page["Content-Type"].startswith("text/html")
    assert b"the database is unavailable" in page.content
    assert refused


@pytest.mark.django_db
def test_the_500_handler_tells_a_lost_database_from_a_bug(
    rf: RequestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = rf.get("/api/projects/1/", HTTP_ACCEPT="application/json")
    # an exception from a middleware, handled where it is at hand (WSGI)
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        assert outage.server_error(request).status_code == 503
    try:
        raise ValueError("a bug")
    except ValueError:
        assert outage.server_error(request).status_code == 500
    # under ASGI the handler runs where the exception is gone: it asks the database
    assert outage.server_error(rf.get("/projects/")).status_code == 500
    from django.db import connections

    monkeypatch.setattr(type(connections["default"]), "is_usable", lambda self: False)
    response = outage.server_error(rf.get("/projects/"))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


# --- the broker down, restarted ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_job_started_while_the_broker_is_down_is_kept_and_the_sweep_sends_it(
    project: Any,
    manager: Any,
    broker: str,
    private_redis: PrivateRedis,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given the broker is down (never started)
    api = api_client(manager)
    # when a manager starts an export
    with django_capture_on_commit_callbacks(execute=True):
        started = time.monotonic()
        response = api.post(f"/api/projects/{project.pk}/exports/", {"format": "sav"}, "json")
    # then the request succeeds at once and the job waits, its failed send logged
    assert response.status_code == 202, response.content
    assert time.monotonic() - started < 10
    job = Job.objects.get(kind="export", project=project)
    assert job.status == Job.Status.QUEUED
    assert f"task workers.run_export[{job.pk}] for the 'default' queue was not sent" in caplog.text
    # when the broker is back and the job has waited unclaimed for the stale period
    private_redis.start()
    Job.objects.filter(pk=job.pk).update(
        created_at=job.created_at.replace(year=job.created_at.year - 1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        done = do_recover_orphaned_jobs()
    # then the sweep sent it again
    assert done["resent"] == [job.pk]
    [message] = _queued(broker)
    assert b"workers.run_export" in message


def test_a_send_while_redis_is_down_fails_fast_and_sends_work_again_once_it_is_back(
    broker: str, private_redis: PrivateRedis
) -> None:
    from kombu.exceptions import OperationalError as BrokerError

    from workers.dispatch import send_task

    private_redis.start()
    send_task("workers.run_export", [1], "default")
    private_redis.kill()
    started = time.monotonic()
    # a broker error in about a second (logged by the robust job send): before the fix each
    # send also subscribed to its result on Redis, and with Redis gone the next send gave up
    # only after ~20 s, with RuntimeError "The Celery application must be restarted"
    with pytest.raises(BrokerError):
        send_task("workers.run_export", [2], "default")
    assert time.monotonic() - started < 10
    private_redis.start()
    send_task("workers.run_export", [3], "default")
    [message] = _queued(broker)
    assert b"[3]" in message


@pytest.mark.django_db(transaction=True)
def test_a_worker_reconnects_to_a_restarted_redis_and_runs_the_jobs_sent_after(
    project: Any, manager: Any, broker: str, private_redis: PrivateRedis, tmp_path: Path,
    settings: Any,
) -> None:  # fmt: skip
    from engine.datasets.export import do_start_export

    private_redis.start()
    env = worker_env(broker, tmp_path, MEDIA_ROOT=settings.MEDIA_ROOT)
    with celery_worker(env, tmp_path / "worker.log", inherit=True) as worker:
        first = do_start_export(project, user=manager, fmt="sav")
        wait_for_status(first, (Job.Status.SUCCEEDED, Job.Status.FAILED), timeout=60)
        assert first.status == Job.Status.SUCCEEDED, (tmp_path / "worker.log").read_text()
        # when Redis crashes and comes back empty
        private_redis.kill()
        time.sleep(1)
        private_redis.start()
        # then the same worker takes the next job
        second = do_start_export(project, user=manager, fmt="sav")
        wait_for_status(second, (Job.Status.SUCCEEDED, Job.Status.FAILED), timeout=60)
        log = (tmp_path / "worker.log").read_text()
        assert second.status == Job.Status.SUCCEEDED, log[-3000:]
        assert worker.poll() is None
    assert "Connection to broker lost" in log


# --- a worker whose database connection is lost ---------------------------------------------------

SENT: list[tuple[str, list[Any], str]] = []


def record_send(name: str, args: list[Any], queue: str) -> None:
    SENT.append((name, args, queue))


@pytest.fixture
def sent(settings: Any) -> list[tuple[str, list[Any], str]]:
    settings.TASK_SENDER = f"{__name__}.record_send"
    SENT.clear()
    return SENT


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_database_connection_is_lost_goes_back_to_the_queue_and_runs_again(
    project: Any, sent: list[tuple[str, list[Any], str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connections

    from engine.jobs import lifecycle

    job = lifecycle.do_create_job(Job.Kind.EXPORT, project=project)
    sent.clear()
    wrapper = type(connections["default"])
    usable = wrapper.is_usable

    def lose_the_connection(job: Job, reporter: Any) -> dict[str, Any]:
        # PostgreSQL restarts under the running job: its connection is dead
        monkeypatch.setattr(wrapper, "is_usable", lambda self: False)
        raise OperationalError("consuming input failed: server closed the connection")

    lifecycle.run_job(job.pk, lose_the_connection, expected=(), internal_error="export failed")
    monkeypatch.setattr(wrapper, "is_usable", usable)
    # then it is not failed: queued again and its task sent again
    job.refresh_from_db()
    assert (job.status, job.attempt, job.error) == (Job.Status.QUEUED, 1, "")
    assert job.message == "the database connection was lost; sent again"
    assert sent == [("workers.run_export", [job.pk], "default")]
    # and the resent task runs it as the next attempt
    lifecycle.run_job(job.pk, lambda j, r: {"ok": True}, expected=(), internal_error="-")
    job.refresh_from_db()
    assert (job.status, job.attempt, job.result) == (Job.Status.SUCCEEDED, 2, {"ok": True})


@pytest.mark.django_db(transaction=True)
def test_a_query_error_on_a_working_connection_still_fails_the_job(project: Any, sent: Any) -> None:
    from engine.jobs import lifecycle

    job = lifecycle.do_create_job(Job.Kind.EXPORT, project=project)

    def bad_query(job: Job, reporter: Any) -> dict[str, Any]:
        raise OperationalError("canceling statement due to statement timeout")

    with pytest.raises(OperationalError):
        lifecycle.run_job(job.pk, bad_query, expected=(), internal_error="export failed")
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("export failed: OperationalError('canceling statement")


@pytest.mark.django_db(transaction=True)
def test_a_claim_while_the_database_restarts_waits_for_it(
    project: Any, sent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.jobs import lifecycle

    job = lifecycle.do_create_job(Job.Kind.EXPORT, project=project)
    claim = lifecycle.claim_job
    refusals = [OperationalError("the database system is starting up")]

    def claim_after_restart(job_id: int) -> Job | None:
        if refusals:
            raise refusals.pop()
        return claim(job_id)

    monkeypatch.setattr(lifecycle, "claim_job", claim_after_restart)
    lifecycle.run_job(job.pk, lambda j, r: {"ok": True}, expected=(), internal_error="-")
    job.refresh_from_db()
    assert (job.status, job.attempt) == (Job.Status.SUCCEEDED, 1)
