"""Site admins manage accounts in the app: create, deactivate or reactivate, reset a password.

Every function takes the acting user and refuses anyone but a site admin
(:class:`PermissionDenied`). Passwords left empty become a one-time set-password link
(:mod:`engine.accounts.invitations`) instead of a password the admin has to pass on.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from engine.accounts.invitations import Invitation, make_invitation
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.models import Role, User


@dataclass(frozen=True)
class AccountChange:
    user: User
    #: Set when no password was given: the one-time link to pass on.
    invitation: Invitation | None


def check_site_admin(actor: User) -> None:
    if not actor.is_site_admin:
        raise PermissionDenied("Only site admins manage accounts")


def accounts(actor: User) -> QuerySet[User]:
    check_site_admin(actor)
    return User.objects.order_by("username")


def _set_password(user: User, password: str) -> Invitation | None:
    if not password:
        user.set_unusable_password()
        return None
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages)) from None
    user.set_password(password)
    return None


@transaction.atomic
def do_create_account(
    actor: User, username: str, *, email: str = "", role: str = Role.ANNOTATOR, password: str = ""
) -> AccountChange:
    """Create an active account; without a password it gets a one-time set-password link."""
    check_site_admin(actor)
    username = username.strip()
    if not username or len(username) > 150 or "\x00" in username or "\x00" in email:
        raise InvalidInput("a username is 1 to 150 characters")
    if role not in Role.values:
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    if User.objects.filter(username=username).exists():
        raise Conflict(f"an account named {username!r} exists already")
    user = User(username=username, email=email.strip(), role=role)
    _set_password(user, password)
    user.save()
    return AccountChange(user, None if password else make_invitation(user))


def _account(user_id: int) -> User:
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such account")
    return user


@transaction.atomic
def do_set_active(actor: User, user_id: int, active: bool) -> User:
    """Deactivate (or reactivate) an account. A deactivated account cannot log in; its leases
    run out as usual and its open fixes go to other annotators."""
    check_site_admin(actor)
    user = _account(user_id)
    if user.pk == actor.pk and not active:
        raise Conflict("You cannot deactivate your own account")
    user.is_active = active
    user.save(update_fields=["is_active"])
    return user


@transaction.atomic
def do_reset_password(actor: User, user_id: int, password: str = "") -> AccountChange:
    """Set a new password, or (empty) make the old one unusable and issue a one-time link."""
    check_site_admin(actor)
    user = _account(user_id)
    _set_password(user, password)
    user.save(update_fields=["password"])
    return AccountChange(user, None if password else make_invitation(user))


def site_admin_accounts() -> list[User]:
    """Active site admins: whom a person without a project can ask to be added."""
    return list(
        User.objects.filter(is_active=True)
        .filter(Q(role=Role.ADMIN) | Q(is_superuser=True))
        .order_by("username")
    )
