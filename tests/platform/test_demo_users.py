"""``create_demo_users``: demo mode only, random passwords printed once, never reset."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from engine.accounts.projects import do_create_user
from engine.models import User

NAMES = ("admin", "manager", "annotator", "reviewer")


def _run() -> str:
    out = io.StringIO()
    call_command("create_demo_users", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_demo_users_refused_outside_demo_mode(settings) -> None:
    settings.DEMO_MODE = False
    with pytest.raises(CommandError, match=r"demo mode \(DEMO_MODE=1"):
        _run()
    assert not User.objects.filter(username__in=NAMES).exists()


@pytest.mark.django_db
def test_demo_users_get_random_passwords_printed_once(settings) -> None:
    settings.DEMO_MODE = True
    first = _run()
    printed = dict(re.findall(r"^\s+(admin|manager|annotator|reviewer)\s+(\S+)\s", first, re.M))
    assert set(printed) == set(NAMES), first
    assert len(set(printed.values())) == len(NAMES)
    for name, password in printed.items():
        user = User.objects.get(username=name)
        assert user.check_password(password)
        assert not user.check_password(f"{name}-pass")
        assert len(password) >= 12
    assert User.objects.get(username="admin").is_superuser
    assert "manage.py changepassword" in first

    hashes = dict(User.objects.values_list("username", "password"))
    second = _run()
    for password in printed.values():
        assert password not in second
    assert dict(User.objects.values_list("username", "password")) == hashes
    assert "exist" in second


@pytest.mark.django_db
def test_existing_account_keeps_its_password(settings) -> None:
    settings.DEMO_MODE = True
    do_create_user("manager", "my-own-manager-password", "manager")
    out = _run()
    assert not re.search(r"^\s+manager\s", out, re.M), out
    assert User.objects.get(username="manager").check_password("my-own-manager-password")
    assert re.search(r"^\s+reviewer\s+\S+", out, re.M)
