"""URLs of the verification pages (included from ``webapp/urls.py``)."""

from django.urls import path

from webapp import review_views

urlpatterns = [
    path("review/", review_views.review_queue, name="review-queue"),
    path("review/projects/<int:project_id>/next/", review_views.take_next, name="review-next"),
    path("review/masklets/<int:masklet_id>/", review_views.review_masklet, name="review-masklet"),
    path(
        "review/masklets/<int:masklet_id>/history/",
        review_views.review_history,
        name="review-history",
    ),
    path("fixes/", review_views.fix_list, name="fix-list"),
    path("fixes/<int:assignment_id>/", review_views.fix_masklet, name="fix-masklet"),
    path(
        "projects/<int:project_id>/review-stats/",
        review_views.review_stats,
        name="review-stats",
    ),
]
