"""The embedded default end to end: SQLite, local media folder, filesystem broker, real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests._services import REPO, celery_worker


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_folder_import_on_embedded_default(tmp_path: Path, small_clip: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_BACKEND", "DJANGO_SETTINGS_MODULE")
    }
    env["DATA_DIR"] = str(tmp_path / "var")
    # As `make run`: demo mode, whose SECRET_KEY is generated in DATA_DIR and shared by the worker.
    env["DEMO_MODE"] = "1"
    env.pop("SECRET_KEY", None)
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "pattern.mp4").write_bytes(small_clip.read_bytes())
    _manage(env, "migrate", "-v0")
    _manage(env, "create_demo_users")
    _manage(
        env,
        "shell",
        "--no-imports",
        "-c",
        "from engine.models import User; from engine.accounts.projects import do_create_project; "
        "do_create_project('Embedded', User.objects.get(username='manager'))",
    )
    out = _manage(env, "import_videos", "Embedded", str(folder), "--user", "manager")
    assert "[1/1] pattern.mp4: queued for decoding" in out
    with celery_worker(
        env, tmp_path / "worker.log", queues="default,interactive,propagate,train", inherit=False
    ):
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline:
            status = _manage(
                env,
                "shell",
                "--no-imports",
                "-c",
                "from engine.models import Video; v = Video.objects.get(); "
                "print(v.status, v.frame_count)",
            ).strip()
            if status.split()[0] in ("ready", "failed"):
                break
            time.sleep(1)
    assert status == "ready 12", (tmp_path / "worker.log").read_text()[-3000:]
    frames = sorted((tmp_path / "var" / "media" / "videos").glob("*/frames/*.jpg"))
    assert len(frames) == 12
