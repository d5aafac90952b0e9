"""The team of a project (add, invite, change roles, remove) and site admins' account tools."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.tokens import default_token_generator

from engine.accounts import membership, users
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.models import Membership, Role, User

pytestmark = pytest.mark.django_db


def test_manager_adds_an_existing_user_by_username_or_email(project, outsider):
    outsider.email = "Oscar@example.org"
    outsider.save()
    added = membership.do_add_member(project, "oscar", Role.REVIEWER)
    assert added.invitation is None
    assert Membership.objects.get(project=project, user=outsider).role == Role.REVIEWER
    # by email, case-insensitive: the same account, its role changed
    again = membership.do_add_member(project, "oscar@EXAMPLE.org", Role.ANNOTATOR)
    assert again.membership.user == outsider
    assert Membership.objects.get(project=project, user=outsider).role == Role.ANNOTATOR


def test_unknown_email_invites_an_account_that_cannot_log_in_until_the_link_is_used(project):
    added = membership.do_add_member(project, "new.person@example.org", Role.ANNOTATOR)
    user = added.membership.user
    assert (user.username, user.email, user.role) == (
        "new.person",
        "new.person@example.org",
        Role.ANNOTATOR,
    )
    assert not user.has_usable_password()
    assert added.invitation is not None
    assert added.invitation.path.startswith("/invite/")
    assert default_token_generator.check_token(user, added.invitation.token)
    # the link is one-time: setting a password invalidates it
    user.set_password("a-long-new-password")
    user.save()
    assert not default_token_generator.check_token(user, added.invitation.token)


def test_unknown_username_is_not_found_with_a_hint(project):
    with pytest.raises(NotFound, match="email address to invite"):
        membership.do_add_member(project, "nobody", Role.ANNOTATOR)


def test_bad_role_and_empty_name_are_refused(project, outsider):
    with pytest.raises(InvalidInput):
        membership.do_add_member(project, "oscar", "admin")
    with pytest.raises(InvalidInput):
        membership.do_add_member(project, "  ", Role.ANNOTATOR)


def test_change_role_and_remove_member(project, annotator):
    membership.do_change_role(project, annotator.pk, Role.REVIEWER)
    assert Membership.objects.get(project=project, user=annotator).role == Role.REVIEWER
    membership.do_remove_member(project, annotator.pk)
    assert not Membership.objects.filter(project=project, user=annotator).exists()
    with pytest.raises(NotFound):
        membership.do_remove_member(project, annotator.pk)


def test_the_last_manager_cannot_leave_or_step_down(project, manager, annotator):
    with pytest.raises(Conflict, match="needs a manager"):
        membership.do_remove_member(project, manager.pk)
    with pytest.raises(Conflict):
        membership.do_change_role(project, manager.pk, Role.ANNOTATOR)
    membership.do_change_role(project, annotator.pk, Role.MANAGER)
    membership.do_change_role(project, manager.pk, Role.ANNOTATOR)
    assert [u.username for u in membership.managers_of(project)] == ["alice"]


@pytest.fixture
def site_admin(db):
    return User.objects.create_user("ada", password="ada-pass", role=Role.ADMIN)


def test_site_admin_creates_deactivates_and_resets(site_admin):
    created = users.do_create_account(
        site_admin, "bob", email="bob@example.org", role=Role.REVIEWER, password="bob-secret-99"
    )
    assert created.invitation is None
    assert authenticate(username="bob", password="bob-secret-99") == created.user
    users.do_set_active(site_admin, created.user.pk, False)
    assert authenticate(username="bob", password="bob-secret-99") is None
    users.do_set_active(site_admin, created.user.pk, True)
    reset = users.do_reset_password(site_admin, created.user.pk)
    created.user.refresh_from_db()
    assert not created.user.has_usable_password()
    assert reset.invitation is not None
    assert default_token_generator.check_token(created.user, reset.invitation.token)
    users.do_reset_password(site_admin, created.user.pk, "another-pass-123")
    assert authenticate(username="bob", password="another-pass-123") is not None


def test_account_tools_refuse_others_and_bad_input(site_admin, manager):
    with pytest.raises(PermissionDenied):
        users.do_create_account(manager, "eve")
    with pytest.raises(PermissionDenied):
        users.do_set_active(manager, site_admin.pk, False)
    with pytest.raises(Conflict):
        users.do_create_account(site_admin, "maria")
    with pytest.raises(Conflict):
        users.do_set_active(site_admin, site_admin.pk, False)
    with pytest.raises(InvalidInput):
        users.do_create_account(site_admin, "eve", password="123")
    with pytest.raises(NotFound):
        users.do_reset_password(site_admin, 999999)
