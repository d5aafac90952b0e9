"""``manage.py export_dataset PROJECT --format sav|davis|coco --out FILE.zip``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.datasets.export import EXPORT_FORMATS, export_snapshot
from engine.datasets.snapshots import ExportError, do_create_snapshot
from engine.management._cli import ProgressPrinter, find_project


class Command(BaseCommand):
    help = (
        "Snapshot the project's verified masklets and write them as SA-V JSON, DAVIS folders "
        "or COCO JSON in a zip, printing progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--format", choices=EXPORT_FORMATS, default="sav")
        parser.add_argument("--out", required=True, help="path of the zip to write")
        parser.add_argument(
            "--video",
            type=int,
            action="append",
            dest="videos",
            help="only this video id (repeatable)",
        )
        parser.add_argument("--kind", choices=("manual", "auto"), action="append", dest="kinds")
        parser.add_argument("--no-frames", action="store_true", help="leave the JPEG frames out")

    def handle(self, *args: Any, **options: Any) -> None:
        project = find_project(options["project"])
        out = Path(options["out"])
        if out.suffix.lower() != ".zip":
            raise CommandError("--out must name a .zip file")
        progress = ProgressPrinter(self.stdout)

        try:
            snapshot = do_create_snapshot(
                project,
                video_ids=options["videos"],
                kinds=options["kinds"],
                name=f"export {out.name}",
            )
            self.stdout.write(f"snapshot {snapshot.pk}: {snapshot.revisions.count()} masklets")
            out.parent.mkdir(parents=True, exist_ok=True)
            stats = export_snapshot(
                snapshot,
                options["format"],
                out,
                progress=progress,
                include_frames=not options["no_frames"],
            )
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"wrote {out} ({out.stat().st_size:,} bytes): {stats.videos} videos, "
            f"{stats.masklets} masklets, {stats.masks} masks"
        )
