"""Projects, members and accounts."""

from __future__ import annotations

from django.db import transaction

from engine.accounts import access
from engine.errors import InvalidInput
from engine.models import Membership, Project, Role, User
from model.config import CONFIGS

DEFAULT_MODEL_CONFIG = "sam2.1_hiera_t"


def do_create_user(username: str, password: str, role: str = Role.ANNOTATOR, **extra: str) -> User:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    return User.objects.create_user(username=username, password=password, role=role, **extra)


@transaction.atomic
def do_create_project(
    name: str,
    creator: User,
    *,
    annotation_fps: float = 6.0,
    phase: int = 3,
    description: str = "",
    model_config: str = DEFAULT_MODEL_CONFIG,
    memory_policy: str = "all",
) -> Project:
    """Create a project; its creator becomes its first manager.

    Args:
        model_config: the SAM 2 configuration its annotation uses, a name of
            ``model.config.CONFIGS``.
        memory_policy: which tracked frames its video sessions keep as memory ("all", Meta's
            behaviour, or "reliable").

    Raises:
        InvalidInput: an fps outside (0, 60], an unknown phase or model configuration, or text
            with NUL (PostgreSQL refuses it).
    """
    if not 0 < annotation_fps <= 60:  # also refuses NaN
        raise InvalidInput("annotation fps must be in (0, 60]")
    if phase not in Project.Phase.values:
        raise InvalidInput(f"unknown phase {phase!r}; choose one of {Project.Phase.values}")
    if model_config not in CONFIGS:
        raise InvalidInput(
            f"unknown model configuration {model_config!r}; choose one of {', '.join(CONFIGS)}"
        )
    policies = [value for value, _ in Project._meta.get_field("memory_policy").choices or []]
    if memory_policy not in policies:
        raise InvalidInput(f"unknown memory policy {memory_policy!r}; choose one of {policies}")
    if "\x00" in name or "\x00" in description:
        raise InvalidInput("a project's name and description cannot hold NUL characters")
    project = Project.objects.create(
        name=name,
        created_by=creator,
        annotation_fps=annotation_fps,
        phase=phase,
        description=description,
        model_config=model_config,
        memory_policy=memory_policy,
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


def do_set_phase(user: User, project: Project, phase: int) -> Project:
    """Move ``project`` to another phase protocol (as the paper's engine went from phase 1 to 3).

    Masklets already made keep their data; from now on the annotation tools are the new phase's
    (every prompt is checked against the project's phase when it arrives), and the telemetry
    and rounds record the new phase.

    Raises:
        PermissionDenied / NotFound: ``user`` does not manage the project.
        InvalidInput: an unknown phase.
    """
    access.access_project_as_manager(user, project.pk)
    if phase not in Project.Phase.values:
        raise InvalidInput(f"unknown phase {phase!r}; choose one of {Project.Phase.values}")
    Project.objects.filter(pk=project.pk).update(phase=phase)
    project.phase = phase
    return project
