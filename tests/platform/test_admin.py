"""Every model of the data engine is in the admin and its list page renders."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client

from engine.models import User


@pytest.fixture
def site_admin(db) -> User:
    return User.objects.create_superuser("root", "root@example.org", "root-pass", role="admin")


def test_all_engine_models_are_registered() -> None:
    missing = [
        m.__name__
        for m in apps.get_app_config("engine").get_models()
        if m not in admin.site._registry
    ]
    assert missing == []


def test_changelists_render(site_admin, project) -> None:
    client = Client()
    client.force_login(site_admin)
    for model in apps.get_app_config("engine").get_models():
        url = f"/admin/engine/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url


def test_non_staff_cannot_open_admin(annotator) -> None:
    client = Client()
    client.force_login(annotator)
    assert client.get("/admin/engine/video/").status_code == 302
