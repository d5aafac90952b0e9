"""URLs of the models and rounds pages (included from ``webapp/urls.py``)."""

from django.urls import path

from webapp import model_views, round_views

urlpatterns = [
    path("models/", model_views.models_page, name="models"),
    path("models/register/", model_views.register, name="model-register"),
    path("models/rollback/", model_views.rollback, name="model-rollback"),
    path("models/<int:version_id>/promote/", model_views.promote, name="model-promote"),
    path("projects/<int:project_id>/rounds/", round_views.rounds_page, name="project-rounds"),
    path("projects/<int:project_id>/rounds/start/", round_views.start_round, name="round-start"),
    path("projects/<int:project_id>/rounds/cancel/", round_views.cancel_round, name="round-cancel"),
    path(
        "projects/<int:project_id>/rounds/settings/",
        round_views.round_settings,
        name="round-settings",
    ),
    path(
        "projects/<int:project_id>/rounds/plots/<str:name>",
        round_views.plot,
        name="round-plot",
    ),
]
