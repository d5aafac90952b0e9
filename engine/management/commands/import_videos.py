"""``manage.py import_videos PROJECT SOURCE``: import every video in a folder or S3 prefix."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.management._cli import find_project
from engine.models import User, Video
from engine.videos.ingest import do_upload_video
from engine.videos.sources import list_source


class Command(BaseCommand):
    help = "Import the videos directly inside a folder or under s3://bucket/prefix into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("source", help="a folder path or s3://bucket/prefix")
        parser.add_argument("--user", help="username recorded as the uploader")

    def handle(self, *args: Any, **options: Any) -> None:
        project = find_project(options["project"])
        user = None
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}")
        try:
            files = list_source(options["source"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not files:
            raise CommandError(f"No files found in {options['source']}")
        failed = 0
        for number, source in enumerate(files, start=1):
            with source.open() as fh:
                video = do_upload_video(project, user, source.name, fh, source.size)
            prefix = f"[{number}/{len(files)}] {source.name}"
            if video.status == Video.Status.FAILED:
                failed += 1
                self.stderr.write(f"{prefix}: refused: {video.error}")
            else:
                self.stdout.write(f"{prefix}: queued for decoding as video {video.pk}")
        self.stdout.write(f"{len(files) - failed} queued, {failed} refused")
