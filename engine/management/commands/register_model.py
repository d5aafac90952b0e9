"""``manage.py register_model PATH --name NAME --config CONFIG [--parent ID] [--promote]``.

Registers a checkpoint file as a candidate model version (validated strictly against the config,
stored under its sha256) and optionally promotes it; what the models page and
``POST /api/models/`` do, for checkpoints on the server's disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.errors import EngineError
from engine.models import ModelVersion
from engine.training import versions


class Command(BaseCommand):
    help = "Register a SAM 2 checkpoint file as a candidate model version (and promote it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument("--config", required=True, help="a model config, e.g. sam2.1_hiera_t")
        parser.add_argument("--parent", type=int, default=None, help="the parent version's id")
        parser.add_argument("--promote", action="store_true", help="promote it at once")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        parent = None
        if options["parent"] is not None:
            parent = ModelVersion.objects.filter(pk=options["parent"]).first()
            if parent is None:
                raise CommandError(f"no model version {options['parent']}")
        try:
            version = versions.do_register_checkpoint(
                None, path, name=options["name"], config=options["config"], parent=parent
            )
            if options["promote"]:
                version = versions.do_promote(None, version, reason="manage.py register_model")
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        summary = f"model version {version.pk} {version.name!r}: {version.status}"
        self.stdout.write(f"{summary}, sha256 {version.sha256}")
