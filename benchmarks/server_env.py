"""The environment of the platform processes a benchmark starts (migrate, uvicorn, workers)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def server_env(data_dir: str) -> dict[str, str]:
    """This process's environment for a fresh platform in ``data_dir``: the real settings, a new
    SECRET_KEY, SQLite (no inherited DATABASE_URL; callers set one to use PostgreSQL), no demo
    mode, quiet logs."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEMO_MODE")},
        "PYTHONPATH": f"{REPO}:{REPO / 'platform'}",
        "DJANGO_SETTINGS_MODULE": "dataengine.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATA_DIR": data_dir,
        "LOG_LEVEL": "error",
    }
