"""The manager's console: team, accounts, invitations, queues and jobs, video data actions."""

from django.urls import path

from webapp import console_data_views, console_jobs_views, console_team_views

urlpatterns = [
    path("projects/<int:project_id>/team/", console_team_views.project_team, name="project-team"),
    path(
        "projects/<int:project_id>/team/<int:user_id>/",
        console_team_views.project_member,
        name="project-member",
    ),
    path("accounts/", console_team_views.accounts_page, name="console-accounts"),
    path("accounts/<int:user_id>/", console_team_views.account_action, name="console-account"),
    path(
        "invite/<uidb64>/<token>/",
        console_team_views.InvitationView.as_view(),
        name="invitation",
    ),
    path("jobs/", console_jobs_views.jobs_page, name="console-jobs"),
    path("jobs/<int:job_id>/retry/", console_jobs_views.job_retry, name="console-job-retry"),
    path("jobs/<int:job_id>/cancel/", console_jobs_views.job_cancel, name="console-job-cancel"),
    path(
        "videos/<int:video_id>/thumbs/<int:index>.jpg",
        console_data_views.frame_thumbnail,
        name="frame-thumbnail",
    ),
    path("videos/<int:video_id>/attach/", console_data_views.video_attach, name="video-attach"),
    path("videos/<int:video_id>/remove/", console_data_views.video_remove, name="video-remove"),
]
