"""What the models and rounds pages and API show, computed once for both (JSON-safe dicts)."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage

from engine.annotation.serving import model_status
from engine.models import Project, User
from engine.training import rounds, triggers, versions

PLOT_SUFFIXES = (".png", ".svg")


def models_overview(user: User) -> dict[str, Any]:
    """Every version (newest first), which one serves, and what a rollback would re-promote."""
    listed = list(versions.versions_for_user(user))
    target = versions.rollback_target(versions.promoted_version())
    return {
        "serving": model_status(),
        "rollback_to": target.pk if target is not None else None,
        "versions": [versions.version_summary(v) for v in listed],
    }


def round_settings_json(project: Project) -> dict[str, Any]:
    row = triggers.get_round_settings(project)
    return {
        "enabled": row.enabled,
        "min_new_masklets": row.min_new_masklets,
        "interval_hours": row.interval_hours,
        "steps": row.steps,
    }


def simulation_plots(project: Project) -> list[str]:
    """Storage keys of the plots the simulated engine wrote for the project."""
    prefix = f"simulation/{project.pk}/"
    try:
        _dirs, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(prefix + name for name in files if name.lower().endswith(PLOT_SUFFIXES))


def active_round(project: Project) -> dict[str, Any] | None:
    job = rounds.active_round_job(project)
    if job is None:
        return None
    round_ = rounds.rounds_for_project(project).filter(job=job).first()
    return {
        "job_id": job.pk,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "round": rounds.round_summary(round_) if round_ is not None else None,
    }


def rounds_overview(project: Project) -> dict[str, Any]:
    """The project's rounds (newest first), the one in progress, settings, new data, plots."""
    listed = rounds.rounds_for_project(project).order_by("-number")
    return {
        "active": active_round(project),
        "settings": round_settings_json(project),
        "new_verified_masklets": triggers.new_verified_count(project),
        "rounds": [rounds.round_summary(r) for r in listed],
        "plots": simulation_plots(project),
    }
