"""The periodic quality sweep (a beat task): retrain when due, score waiting masklets,
auto-accept where a manager switched it on."""

from __future__ import annotations

from typing import Any

from engine.models import Project
from engine.quality.auto_accept import do_auto_accept_waiting
from engine.quality.training import QualityPolicy, do_rescore_waiting, do_train_quality_model

#: Revisions scored per project and sweep: a first sweep over a large backlog (masks and
#: frames decoded once per revision) stays inside the task's time limit; the next continues.
SCORE_BATCH = 300


def do_quality_sweep(policy: QualityPolicy, project_ids: list[int] | None = None) -> dict[str, Any]:
    """For each project (or those given): retrain its estimator when due, bring the scores of
    its waiting masklets up to date, then auto-accept. Idempotent: a second run right after
    finds nothing to do."""
    projects = Project.objects.all()
    if project_ids is not None:
        projects = projects.filter(pk__in=project_ids)
    report: dict[str, Any] = {"trained": [], "scored": 0, "auto_accepted": []}
    for project in projects:
        if do_train_quality_model(project, policy) is not None:
            report["trained"].append(project.pk)
        report["scored"] += do_rescore_waiting(project, limit=SCORE_BATCH)
        report["auto_accepted"] += do_auto_accept_waiting(project)
    return report
