"""``manage.py ensure_model``: a model for the workers out of the box (``make run`` calls it).

Does nothing when a version is promoted or ``SAM2_CHECKPOINT`` resolves; otherwise fetches the
official ``sam2.1_hiera_tiny`` (pinned URL and sha256) or, offline, trains the small demo model
on procedural videos once (cached) and promotes it (engine.training.demo_model).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.errors import EngineError
from engine.training.demo_model import ensure_model


class Command(BaseCommand):
    help = (
        "Make sure a SAM 2 model serves: keep a promoted one, else fetch the official "
        "sam2.1_hiera_tiny, else (offline) train and promote the small demo model (made once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--offline", action="store_true", help="never download; use the demo model"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            version = ensure_model(
                allow_download=not options["offline"], say=lambda m: self.stdout.write(m)
            )
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        if version is not None:
            demo = " (demo model)" if (version.metrics or {}).get("demo") else ""
            self.stdout.write(f"serving model version {version.pk}: {version.name}{demo}")
