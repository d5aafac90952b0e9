"""Settings come from the environment and refuse bad values with a message naming them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dataengine import env

REPO = Path(__file__).resolve().parents[2]


def _load_settings(extra_env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env_vars = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_BACKEND")
    }
    env_vars.update(
        {
            "DATA_DIR": str(tmp_path),
            "PYTHONPATH": f"{REPO}:{REPO / 'platform'}",
            "DJANGO_SETTINGS_MODULE": "dataengine.settings",
            **extra_env,
        }
    )
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, "
        "s.STORAGES['default']['BACKEND'])"
    )
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
