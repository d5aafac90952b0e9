"""URLs of the annotation API (``api.annotation_views``), included from ``api/urls.py``."""

from __future__ import annotations

from django.urls import path

from api import annotation_views as views
from api import serving_views

urlpatterns = [
    path("annotation/next/", views.take_next, name="api-annotation-next"),
    path("annotation/leases/", views.lease_list, name="api-annotation-leases"),
    path(
        "annotation/leases/<int:lease_id>/release/",
        views.lease_release,
        name="api-annotation-release",
    ),
    path("annotation/leases/<int:lease_id>/renew/", views.lease_renew, name="api-annotation-renew"),
    path("annotation/leases/<int:lease_id>/warm/", views.lease_warm, name="api-annotation-warm"),
    path(
        "annotation/leases/<int:lease_id>/finish/", views.lease_finish, name="api-annotation-finish"
    ),
    path(
        "annotation/leases/<int:lease_id>/objects/",
        views.object_create,
        name="api-annotation-objects",
    ),
    path("annotation/stats/", views.stats, name="api-annotation-stats"),
    path("annotation/events/", views.events, name="api-annotation-events"),
    path("masklets/<int:masklet_id>/draft/", views.draft, name="api-draft"),
    path("masklets/<int:masklet_id>/draft/edits/", views.draft_edits, name="api-draft-edits"),
    path("masklets/<int:masklet_id>/draft/undo/", views.draft_undo, name="api-draft-undo"),
    path("masklets/<int:masklet_id>/draft/redo/", views.draft_redo, name="api-draft-redo"),
    path("masklets/<int:masklet_id>/draft/submit/", views.draft_submit, name="api-draft-submit"),
    path("masklets/<int:masklet_id>/draft/label/", views.draft_label, name="api-draft-label"),
    # model serving (api.serving_views)
    path("masklets/<int:masklet_id>/prompt/", serving_views.prompt, name="api-masklet-prompt"),
    path(
        "masklets/<int:masklet_id>/propagate/",
        serving_views.propagate,
        name="api-masklet-propagate",
    ),
    path("annotation/model/", serving_views.model_status, name="api-annotation-model"),
]
