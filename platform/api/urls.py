from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from api import review_views, views
from api.token_views import obtain_token

router = DefaultRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("videos", views.VideoViewSet, basename="video")
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [
    path("token/", obtain_token, name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("api.dataset_views")),
    path("", include("api.automask_views")),
    path("", include("api.team_views")),
    path("", include("api.jobs_views")),
    path("", include("api.annotation_urls")),
    path("", include("api.training_urls")),
    path("", include("api.quality_views")),
    path("", include(router.urls)),
    path("", include(review_views.review_urlpatterns)),
]
