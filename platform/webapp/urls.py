from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/new/", views.project_new, name="project-new"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/manage/", views.project_manage, name="project-manage"),
    path("projects/<int:project_id>/phase/", views.project_phase, name="project-phase"),
    path("videos/<int:video_id>/", views.video_detail, name="video-detail"),
    path("media/<path:key>", views.media, name="media"),
    path("", include("webapp.review_urls")),
    path("", include("webapp.annotation_urls")),
    path("", include("webapp.training_urls")),
    path("", include("webapp.quality_views")),
    path("", include("webapp.console_urls")),
]
