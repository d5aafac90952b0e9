"""``manage.py create_demo_users``: the accounts the run command prints, for trying the site."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from engine.accounts.projects import do_create_user
from engine.models import Role, User

DEMO_USERS = (
    ("admin", Role.ADMIN),
    ("manager", Role.MANAGER),
    ("annotator", Role.ANNOTATOR),
    ("reviewer", Role.REVIEWER),
)


class Command(BaseCommand):
    help = "Create demo accounts (password = username + '-pass') if they do not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        for username, role in DEMO_USERS:
            if User.objects.filter(username=username).exists():
                continue
            user = do_create_user(username, f"{username}-pass", role)
            if role == Role.ADMIN:
                User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
            self.stdout.write(f"created {username} ({role}), password {username}-pass")
