"""``manage.py create_demo_users``: the demo accounts of ``make run`` (demo mode only)."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from engine.accounts.projects import do_create_user
from engine.models import Role, User

DEMO_USERS = (
    ("admin", Role.ADMIN),
    ("manager", Role.MANAGER),
    ("annotator", Role.ANNOTATOR),
    ("reviewer", Role.REVIEWER),
)


class Command(BaseCommand):
    help = (
        "Demo mode (DEMO_MODE=1) only: create the demo accounts that do not exist yet, each with "
        "a random password printed once; existing accounts keep their passwords."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError(
                "demo accounts exist only in demo mode (DEMO_MODE=1, as `make run` sets); "
                "create real accounts with `manage.py createsuperuser` or the admin pages"
            )
        created = []
        for username, role in DEMO_USERS:
            if User.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(12)
            user = do_create_user(username, password, role)
            if role == Role.ADMIN:
                User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
            created.append((username, role, password))
        names = ", ".join(username for username, _ in DEMO_USERS)
        if created:
            self.stdout.write("  demo accounts (passwords shown this once, write them down):")
            for username, role, password in created:
                self.stdout.write(f"    {username:<10} {password}   ({role})")
        else:
            self.stdout.write(f"  demo accounts {names} exist (passwords were printed at creation)")
        data_dir = "" if settings.DATA_DIR == settings.REPO_ROOT / "var" else settings.DATA_DIR
        self.stdout.write(
            "  new password: DEMO_MODE=1 "
            + (f"DATA_DIR={data_dir} " if data_dir else "")
            + ".venv/bin/python manage.py changepassword <name>"
        )
