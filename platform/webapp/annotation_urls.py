"""URLs of the annotator's pages (included from ``webapp/urls.py``)."""

from django.urls import path

from webapp import annotation_stats_views, annotation_views

urlpatterns = [
    path("annotate/", annotation_views.annotate_queue, name="annotate-queue"),
    path(
        "annotate/projects/<int:project_id>/next/",
        annotation_views.take_next,
        name="annotate-next",
    ),
    path(
        "annotate/leases/<int:lease_id>/release/",
        annotation_views.release,
        name="annotate-release",
    ),
    path("annotate/stats/", annotation_stats_views.my_stats, name="annotate-stats"),
    path(
        "projects/<int:project_id>/annotation-stats/",
        annotation_stats_views.project_stats,
        name="annotation-stats",
    ),
    path("annotate/<int:lease_id>/", annotation_views.workspace, name="annotate-workspace"),
]
