"""Projects, members and accounts."""

from __future__ import annotations

from django.db import transaction

from engine.models import Membership, Project, Role, User


def do_create_user(username: str, password: str, role: str = Role.ANNOTATOR, **extra: str) -> User:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    return User.objects.create_user(username=username, password=password, role=role, **extra)


@transaction.atomic
def do_create_project(
    name: str, creator: User, *, annotation_fps: float = 6.0, phase: int = 3, description: str = ""
) -> Project:
    """Create a project; its creator becomes its first manager."""
    if annotation_fps <= 0 or annotation_fps > 60:
        raise ValueError("annotation fps must be in (0, 60]")
    project = Project.objects.create(
        name=name,
        created_by=creator,
        annotation_fps=annotation_fps,
        phase=phase,
        description=description,
    )
    Membership.objects.create(project=project, user=creator, role=Role.MANAGER)
    return project


def do_set_membership(project: Project, user: User, role: str) -> Membership:
    if role not in (Role.ANNOTATOR, Role.REVIEWER, Role.MANAGER):
        raise ValueError(f"a project role is annotator, reviewer or manager, not {role!r}")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
