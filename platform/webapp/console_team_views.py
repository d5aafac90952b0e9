"""Pages: a project's team (managers) and the site's accounts (site admins).

Each action is a POSTed form that calls ``engine.accounts`` and comes back to its page with a
message; a refused action (last manager, unknown user) is shown there too, while a user without
the right role gets the 403 page (``webapp.errors``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from engine.accounts import access, membership, users
from engine.accounts.invitations import Invitation
from engine.errors import EngineError
from webapp.forms import AccountForm, AddMemberForm, MemberRoleForm, PasswordResetForm
from webapp.users import page_user


def _link_message(request: HttpRequest, who: str, invitation: Invitation) -> None:
    link = request.build_absolute_uri(invitation.path)
    messages.info(
        request,
        f"Send {who} this one-time link to choose a password (it works once): {link}",
        extra_tags="invitation",
    )


@login_required
def project_team(request: HttpRequest, project_id: int) -> HttpResponse:
    """Members with their roles; add (or invite) people, change roles, remove members."""
    project = access.access_project_as_manager(page_user(request), project_id)
    form = AddMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            added = membership.do_add_member(project, data["identifier"], data["role"])
        except EngineError as exc:
            form.add_error("identifier", str(exc))
        else:
            who = added.membership.user.username
            messages.success(request, f"{who} is now {data['role']} in {project.name}.")
            if added.invitation is not None:
                _link_message(request, who, added.invitation)
            return redirect("project-team", project_id=project.pk)
    return render(
        request,
        "console/team.html",
        {"project": project, "members": membership.members_of(project), "form": form},
    )


@login_required
@require_POST
def project_member(request: HttpRequest, project_id: int, user_id: int) -> HttpResponse:
    """Change a member's role (``role``) or remove them (``remove``)."""
    project = access.access_project_as_manager(page_user(request), project_id)
    try:
        if "remove" in request.POST:
            membership.do_remove_member(project, user_id)
            messages.success(request, "Member removed.")
        else:
            form = MemberRoleForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Choose annotator, reviewer or manager.")
            else:
                changed = membership.do_change_role(project, user_id, form.cleaned_data["role"])
                messages.success(request, f"{changed.user.username} is now {changed.role}.")
    except EngineError as exc:
        messages.error(request, str(exc))
    return redirect("project-team", project_id=project.pk)


@login_required
def accounts_page(request: HttpRequest) -> HttpResponse:
    """Site admins: every account; create one, deactivate or reactivate, reset a password."""
    actor = page_user(request)
    accounts = users.accounts(actor)
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = users.do_create_account(
                actor,
                data["username"],
                email=data["email"],
                role=data["role"],
                password=data["password"],
            )
        except EngineError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Account {created.user.username} created.")
            if created.invitation is not None:
                _link_message(request, created.user.username, created.invitation)
            return redirect("console-accounts")
    return render(
        request,
        "console/accounts.html",
        {"accounts": accounts, "form": form, "reset_form": PasswordResetForm()},
    )


@login_required
@require_POST
def account_action(request: HttpRequest, user_id: int) -> HttpResponse:
    """``action``: deactivate, activate or reset (with an optional ``password``)."""
    actor = page_user(request)
    action = request.POST.get("action", "")
    try:
        if action in ("deactivate", "activate"):
            user = users.do_set_active(actor, user_id, action == "activate")
            messages.success(request, f"{user.username} {action}d.")
        elif action == "reset":
            form = PasswordResetForm(request.POST)
            password = form.cleaned_data["password"] if form.is_valid() else ""
            change = users.do_reset_password(actor, user_id, password)
            messages.success(request, f"Password of {change.user.username} reset.")
            if change.invitation is not None:
                _link_message(request, change.user.username, change.invitation)
        else:
            users.check_site_admin(actor)
            messages.error(request, "Unknown action.")
    except EngineError as exc:
        if not actor.is_site_admin:
            raise
        messages.error(request, str(exc))
    return redirect("console-accounts")


class InvitationView(auth_views.PasswordResetConfirmView):
    """The one-time link of an invitation or reset: choose a password, then log in."""

    template_name = "console/set_password.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        messages.success(self.request, "Password set. Log in with it.")
        return super().form_valid(form)
