"""Permission-scoped fetches: every queryset a user sees comes from here."""

from __future__ import annotations

from django.db.models import QuerySet

from engine.errors import NotFound, PermissionDenied
from engine.models import Job, Masklet, Membership, Project, Role, User, Video


class AccessDenied(PermissionDenied):
    """The user may see the object but not do this with it."""


def projects_for_user(user: User) -> QuerySet[Project]:
    if user.is_site_admin:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def project_role(user: User, project: Project) -> str | None:
    """The user's role in the project; site admins act as managers everywhere."""
    if user.is_site_admin:
        return Role.MANAGER
    membership = Membership.objects.filter(project=project, user=user).first()
    return membership.role if membership else None


def access_project(user: User, project_id: int) -> Project:
    try:
        return projects_for_user(user).get(pk=project_id)
    except Project.DoesNotExist:
        raise NotFound("No such project") from None


def access_project_as_manager(user: User, project_id: int) -> Project:
    project = access_project(user, project_id)
    if project_role(user, project) != Role.MANAGER:
        raise AccessDenied("Only the project's managers may do this")
    return project


def videos_for_user(user: User) -> QuerySet[Video]:
    return Video.objects.filter(project__in=projects_for_user(user))


def access_video(user: User, video_id: int) -> Video:
    try:
        return videos_for_user(user).select_related("project").get(pk=video_id)
    except Video.DoesNotExist:
        raise NotFound("No such video") from None


def masklets_for_user(user: User) -> QuerySet[Masklet]:
    return Masklet.objects.filter(video__project__in=projects_for_user(user))


def jobs_for_user(user: User) -> QuerySet[Job]:
    if user.is_site_admin:
        return Job.objects.all()
    return Job.objects.filter(project__in=projects_for_user(user))
