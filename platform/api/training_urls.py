"""Routes of the model-version and round endpoints (see ``api.training_views``)."""

from django.urls import path

from api import training_views as v

urlpatterns = [
    path("models/", v.ModelListView.as_view(), name="api-models"),
    path("models/rollback/", v.RollbackView.as_view(), name="api-model-rollback"),
    path("models/<int:version_id>/", v.ModelDetailView.as_view(), name="api-model"),
    path("models/<int:version_id>/promote/", v.PromoteView.as_view(), name="api-model-promote"),
    path("projects/<int:project_id>/rounds/", v.ProjectRoundsView.as_view(), name="api-rounds"),
    path(
        "projects/<int:project_id>/rounds/cancel/",
        v.CancelRoundView.as_view(),
        name="api-round-cancel",
    ),
    path(
        "projects/<int:project_id>/round-settings/",
        v.RoundSettingsView.as_view(),
        name="api-round-settings",
    ),
    path("rounds/<int:round_id>/", v.RoundDetailView.as_view(), name="api-round"),
]
