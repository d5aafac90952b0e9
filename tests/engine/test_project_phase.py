"""A manager moves a project from one phase protocol to another (engine.accounts.projects)."""

from __future__ import annotations

import pytest

from engine.accounts.projects import do_set_phase
from engine.annotation import phases
from engine.errors import InvalidInput, PermissionDenied
from engine.models import Project


def test_manager_moves_the_project_and_its_tools_follow(project, manager):
    do_set_phase(manager, project, Project.Phase.SAM_PER_FRAME)

    stored = Project.objects.get(pk=project.pk)
    assert stored.phase == Project.Phase.SAM_PER_FRAME
    with pytest.raises(phases.ToolNotAllowed):
        phases.check_tool(stored, phases.PROPAGATE)

    do_set_phase(manager, stored, Project.Phase.SAM2_FULL)
    phases.check_tool(Project.objects.get(pk=project.pk), phases.PROPAGATE)


def test_only_a_manager_of_the_project_moves_it(project, annotator):
    with pytest.raises(PermissionDenied):
        do_set_phase(annotator, project, Project.Phase.SAM_PER_FRAME)
    assert Project.objects.get(pk=project.pk).phase == Project.Phase.SAM2_FULL


def test_an_unknown_phase_is_refused(project, manager):
    with pytest.raises(InvalidInput, match="unknown phase"):
        do_set_phase(manager, project, 4)
    assert Project.objects.get(pk=project.pk).phase == Project.Phase.SAM2_FULL
