"""``manage.py import_masklets PROJECT PATH [--format sav|davis|coco] [--video NAME]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.datasets.import_readers import IMPORT_FORMATS, DatasetImportError
from engine.datasets.importing import import_path
from engine.management._cli import ProgressPrinter, find_project
from engine.models import Masklet, User


class Command(BaseCommand):
    help = (
        "Import masklets from SA-V JSON files, a DAVIS / YouTube-VOS folder or COCO JSON "
        "(a file, a folder or a zip), printing progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("path", help="a .json file, a folder or a .zip")
        parser.add_argument("--format", choices=IMPORT_FORMATS, help="default: detected")
        parser.add_argument("--video", help="import into the video with this name")
        parser.add_argument(
            "--status",
            choices=Masklet.Status.values,
            default=Masklet.Status.SUBMITTED,
            help="status of the imported masklets (default: submitted, i.e. queued for review, "
            "as on the project's page); 'verified' imports them as ground truth",
        )
        parser.add_argument("--user", help="username recorded as the author")

    def handle(self, *args: Any, **options: Any) -> None:
        project = find_project(options["project"])
        author = None
        if options["user"]:
            author = User.objects.filter(username=options["user"]).first()
            if author is None:
                raise CommandError(f"No user named {options['user']!r}")
        progress = ProgressPrinter(self.stdout)

        try:
            report = import_path(
                project,
                Path(options["path"]),
                fmt=options["format"],
                video_name=options["video"],
                author=author,
                status=options["status"],
                progress=progress,
            )
        except DatasetImportError as exc:
            raise CommandError(str(exc)) from None
        for video in report.videos:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(video.kinds.items())) or "none"
            state = "new" if video.created else "existing"
            self.stdout.write(
                f"{video.name} ({state} video {video.video_id}): {kinds} masklets, "
                f"{video.skipped} already there, {video.annotated_frames} frames"
            )
        self.stdout.write(f"imported {report.masklets} masklets")
