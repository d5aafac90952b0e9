"""A project's team: add (or invite) people with a role, change roles, remove members.

Callers fetch the project with :func:`engine.accounts.access.access_project_as_manager` first;
these functions assume the actor may manage the project. A project always keeps at least one
manager, so nobody can lock everyone out of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from engine.accounts.invitations import Invitation, make_invitation
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Membership, Project, Role, User

PROJECT_ROLES = (Role.ANNOTATOR, Role.REVIEWER, Role.MANAGER)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class AddedMember:
    membership: Membership
    #: Set when the person had no account: the one-time link to pass on to them.
    invitation: Invitation | None


def members_of(project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("role", "user__username")


def managers_of(project: Project) -> QuerySet[User]:
    return User.objects.filter(
        memberships__project=project, memberships__role=Role.MANAGER, is_active=True
    ).order_by("username")


def find_user(identifier: str) -> User | None:
    """The account whose username, or else whose email (case-insensitive), is ``identifier``."""
    identifier = identifier.strip()
    user = User.objects.filter(username=identifier).first()
    if user is None and "@" in identifier:
        user = User.objects.filter(email__iexact=identifier).order_by("pk").first()
    return user


def _check_role(role: str) -> None:
    if role not in PROJECT_ROLES:
        raise InvalidInput(f"a project role is annotator, reviewer or manager, not {role!r}")


@transaction.atomic
def do_add_member(project: Project, identifier: str, role: str) -> AddedMember:
    """Give the account named ``identifier`` (username or email) ``role`` in the project.

    An email that matches no account invites its owner: a new active account with an unusable
    password (username from the address) and a one-time link to set one. A username that
    matches nothing is :class:`NotFound`. An existing member gets the new role.
    """
    _check_role(role)
    identifier = identifier.strip()
    if not identifier or "\x00" in identifier or len(identifier) > 254:
        raise InvalidInput("give a username or an email address")
    user = find_user(identifier)
    invitation = None
    if user is None:
        if not _EMAIL.match(identifier):
            raise NotFound(
                f"No account is named {identifier!r}; give their email address to invite them"
            )
        user = _invite(identifier, role)
        invitation = make_invitation(user)
    elif not user.is_active:
        raise Conflict(f"{user.username}'s account is deactivated; a site admin can reactivate it")
    current = Membership.objects.filter(project=project, user=user).first()
    if current is not None and current.role == Role.MANAGER and role != Role.MANAGER:
        _keep_a_manager(project, leaving=user)
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return AddedMember(membership, invitation)


def _invite(email: str, role: str) -> User:
    base = re.sub(r"[^\w.@+-]", "", email.split("@")[0])[:140] or "user"
    username, n = base, 1
    while User.objects.filter(username=username).exists():
        n += 1
        username = f"{base}{n}"
    user = User(username=username, email=email, role=role, is_active=True)
    user.set_unusable_password()
    user.save()
    return user


def _keep_a_manager(project: Project, leaving: User) -> None:
    if not managers_of(project).exclude(pk=leaving.pk).exists():
        raise Conflict("A project needs a manager: make someone else manager first")


@transaction.atomic
def do_change_role(project: Project, user_id: int, role: str) -> Membership:
    """Change a member's role; the last manager cannot step down (:class:`Conflict`).
    Locks the project's membership rows."""
    _check_role(role)
    membership = _locked_membership(project, user_id)
    if membership.role == Role.MANAGER and role != Role.MANAGER:
        _keep_a_manager(project, leaving=membership.user)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def do_remove_member(project: Project, user_id: int) -> None:
    """Remove a member; their open fixes go back to the project's other annotators (see
    ``engine.annotation.leases.open_fixes_for``). The last manager cannot leave."""
    membership = _locked_membership(project, user_id)
    if membership.role == Role.MANAGER:
        _keep_a_manager(project, leaving=membership.user)
    membership.delete()


def _locked_membership(project: Project, user_id: int) -> Membership:
    list(Membership.objects.select_for_update().filter(project=project))
    membership = (
        Membership.objects.select_related("user").filter(project=project, user_id=user_id).first()
    )
    if membership is None:
        raise NotFound("No such member")
    return membership
