"""Helpers shared by the management commands."""

from __future__ import annotations

from django.core.management.base import CommandError, OutputWrapper

from engine.models import Project


def find_project(ref: str) -> Project:
    """A project by id (all digits) or by name; CommandError if there is none."""
    projects = Project.objects.all()
    project = (projects.filter(pk=int(ref)) if ref.isdigit() else projects.filter(name=ref)).first()
    if project is None:
        raise CommandError(f"No project {ref!r}")
    return project


class ProgressPrinter:
    """A ``progress(fraction, message)`` callback printing a line per 5 % (and at the end)."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.last = -1.0

    def __call__(self, fraction: float, message: str) -> None:
        if fraction - self.last >= 0.05 or fraction >= 1.0:
            self.last = fraction
            self.out.write(f"{fraction * 100:5.1f}%  {message}")
