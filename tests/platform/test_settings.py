"""Settings come from the environment and refuse bad values with a message naming them."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dataengine import env
from dataengine.demo import LoopbackOnlyMiddleware

REPO = Path(__file__).resolve().parents[2]
RANDOM_KEY = secrets.token_urlsafe(50)


def _child_env(extra_env: Mapping[str, str | None], tmp_path: Path) -> dict[str, str]:
    """Our environment less the service and secret variables, plus `extra_env`."""
    env_vars: dict[str, str | None] = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "STORAGE_BACKEND",
            "SECRET_KEY",
            "SECRET_KEY_FILE",
            "DEMO_MODE",
            "ALLOWED_HOSTS",
        )
    }
    env_vars.update(
        {
            "DATA_DIR": str(tmp_path),
            "PYTHONPATH": f"{REPO}:{REPO / 'platform'}",
            "DJANGO_SETTINGS_MODULE": "dataengine.settings",
            "SECRET_KEY": RANDOM_KEY,
        }
    )
    env_vars.update(extra_env)
    return {k: v for k, v in env_vars.items() if v is not None}


SERVICES = (
    "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.STORAGES['default']['BACKEND'])"
)


def _load_settings(
    extra_env: Mapping[str, str | None], tmp_path: Path, show: str = SERVICES
) -> subprocess.CompletedProcess[str]:
    """Set Django up in a child process with `extra_env` (None removes a variable); run `show`."""
    env_vars = _child_env(extra_env, tmp_path)
    code = f"import django; django.setup(); from django.conf import settings as s; {show}"
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env_vars,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_embedded_default_needs_no_server(tmp_path: Path) -> None:
    result = _load_settings({}, tmp_path)
    assert result.returncode == 0, result.stderr
    engine, broker, storage = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert broker == "filesystem://"
    assert storage == "django.core.files.storage.FileSystemStorage"


def test_real_services_from_environment(tmp_path: Path) -> None:
    result = _load_settings(
        {
            "DATABASE_URL": "postgresql://u@127.0.0.1:5432/x",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": "frames",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "redis://127.0.0.1:6379/3",
        "storages.backends.s3.S3Storage",
    ]


#: Four requests' worth of connections in a child: whether a PostgreSQL backend served two.
BACKEND_PIDS = (
    "from django.db import connection as c; pids = []\n"
    "for _ in range(4):\n"
    "    cur = c.cursor(); cur.execute('SELECT pg_backend_pid()'); pids.append(cur.fetchone()[0])\n"
    "    c.close()\n"
    "print(bool(s.DATABASES['default']['OPTIONS'].get('pool')), len(set(pids)) < len(pids))"
)
POSTGRES_URL = os.environ.get("DATABASE_URL", "")
if not POSTGRES_URL.startswith("postgres"):
    POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/dataengine"


@pytest.mark.parametrize(
    ("variables", "worker", "pooled"),
    [
        ({}, False, True),  # a web process borrows the same connection again
        ({"DB_POOL_MAX_SIZE": "0"}, False, False),
        ({"DB_CONN_MAX_AGE": "60"}, False, False),  # persistent connections: no pool
        ({}, True, False),  # a Celery worker (Celery closes pools after each task)
    ],
)
def test_postgresql_connections_come_from_a_pool_in_web_processes(
    variables: dict[str, str], worker: bool, pooled: bool, tmp_path: Path
) -> None:
    env_vars = _child_env({"DATABASE_URL": POSTGRES_URL, **variables}, tmp_path)
    has_pool, reused = _django_child(worker, BACKEND_PIDS, env_vars).split()
    assert has_pool == str(pooled)
    # closed after each: only a pool hands a server connection back again
    assert reused == str(pooled)


#: Four tasks' worth of queries in a child, with what Celery's Django fixup calls between tasks:
#: whether one PostgreSQL backend served them all.
TASK_PIDS = (
    "from django.db import connection as c; pids = []\n"
    "for _ in range(4):\n"
    "    cur = c.cursor(); cur.execute('SELECT pg_backend_pid()'); pids.append(cur.fetchone()[0])\n"
    "    c.close_if_unusable_or_obsolete()\n"
    "print(len(set(pids)) == 1)"
)


@pytest.mark.parametrize(("worker", "kept"), [(True, True), (False, False)])
def test_a_worker_keeps_its_connection_between_tasks(
    worker: bool, kept: bool, tmp_path: Path
) -> None:
    env_vars = _child_env({"DATABASE_URL": POSTGRES_URL, "DB_POOL_MAX_SIZE": "0"}, tmp_path)
    assert _django_child(worker, TASK_PIDS, env_vars).strip() == str(kept)


def _django_child(worker: bool, code: str, env_vars: dict[str, str]) -> str:
    """Run ``code`` in a child process set up as a web process or (``worker``) as a Celery
    worker, which loads the Celery app before its settings; its standard output."""
    prefix = "import workers.celery; " if worker else ""
    setup = f"{prefix}import django; django.setup(); from django.conf import settings as s\n"
    result = subprocess.run(
        [sys.executable, "-c", setup + code],
        env=env_vars,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES='lots' is not an integer"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"STORAGE_BACKEND": "ftp"}, "STORAGE_BACKEND='ftp' must be one of local, s3"),
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND=s3 needs S3_BUCKET"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must be a postgresql:// or sqlite://"),
        ({"MAX_VIDEO_SECONDS": "-1"}, "MAX_VIDEO_SECONDS=-1.0 must be at least 0.1"),
    ],
)
def test_bad_values_stop_start_up(variables: dict[str, str], message: str, tmp_path: Path) -> None:
    result = _load_settings(variables, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_secret_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    assert env.env_str("SECRET_KEY") == "s3cr3t"
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY_FILE"):
        env.env_str("SECRET_KEY")


# --- SECRET_KEY and demo mode -------------------------------------------------------------------


@pytest.mark.parametrize("debug", ["0", "1"])
def test_missing_secret_key_stops_start_up(debug: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=_child_env({"SECRET_KEY": None, "DEBUG": debug}, tmp_path),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "DEMO_MODE=1" in result.stderr
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        # The constant the settings used to fall back to.
        (
            "insecure-embedded-default-key-change-me-for-any-shared-deployment",
            "SECRET_KEY is a known default or placeholder value",
        ),
        ("django-insecure-" + "x1y2z3" * 9, "SECRET_KEY is a known default or placeholder value"),
        ("ab" * 40, "SECRET_KEY is a known default or placeholder value"),
        ("s3cr3t", "SECRET_KEY is too short (6 characters)"),
    ],
)
@pytest.mark.parametrize("demo", ["0", "1"])
def test_weak_secret_key_stops_start_up(key: str, message: str, demo: str, tmp_path: Path) -> None:
    result = _load_settings({"SECRET_KEY": key, "DEMO_MODE": demo}, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_demo_mode_generates_a_private_key_once(tmp_path: Path) -> None:
    demo = {"SECRET_KEY": None, "DEMO_MODE": "1"}
    first = _load_settings(demo, tmp_path, show="print(s.SECRET_KEY)")
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key) >= env.SECRET_KEY_MIN_LENGTH
    # The same key on the next start (sessions survive), a different one in another DATA_DIR.
    again = _load_settings(demo, tmp_path, show="print(s.SECRET_KEY)")
    assert again.stdout.strip() == key
    other = _load_settings(demo, tmp_path / "other", show="print(s.SECRET_KEY)")
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() != key


def test_demo_key_readable_by_others_stops_start_up(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(50))
    key_file.chmod(0o644)
    result = _load_settings({"SECRET_KEY": None, "DEMO_MODE": "1"}, tmp_path)
    assert result.returncode != 0
    assert "readable by others (mode 0644)" in result.stderr


@pytest.mark.parametrize("hosts", ["*", "localhost,example.org", "0.0.0.0"])
def test_demo_mode_refuses_hosts_beyond_this_machine(hosts: str, tmp_path: Path) -> None:
    result = _load_settings({"DEMO_MODE": "1", "ALLOWED_HOSTS": hosts}, tmp_path)
    assert result.returncode != 0
    assert "DEMO_MODE=1 serves this machine only, but ALLOWED_HOSTS names" in result.stderr
    # Outside demo mode the same hosts are the operator's choice.
    assert _load_settings({"ALLOWED_HOSTS": hosts}, tmp_path).returncode == 0


def test_demo_mode_serves_loopback_clients_only(tmp_path: Path) -> None:
    show = "print(s.MIDDLEWARE[0], s.ALLOWED_HOSTS)"
    result = _load_settings({"DEMO_MODE": "1"}, tmp_path, show=show)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dataengine.demo.LoopbackOnlyMiddleware ")
    normal = _load_settings({}, tmp_path, show=show)
    assert "LoopbackOnlyMiddleware" not in normal.stdout

    from django.http import HttpResponse
    from django.test import RequestFactory

    middleware = LoopbackOnlyMiddleware(lambda request: HttpResponse("ok"))
    for address, status in [
        ("127.0.0.1", 200),
        ("::1", 200),
        ("::ffff:127.0.0.1", 200),
        ("192.168.1.20", 403),
        ("10.0.0.1", 403),
        ("", 403),
    ]:
        request = RequestFactory().get("/", REMOTE_ADDR=address)
        assert middleware(request).status_code == status, address
