"""Cancelling a job over the API: its creator, the project's managers and site admins may;
other members get 403, users outside the project 404, and the job is left as it was."""

from __future__ import annotations

import pytest

from engine.accounts.projects import do_create_user
from engine.jobs.lifecycle import do_create_job
from engine.models import Job, Project, User
from tests._clients import api_client


def _export_job(project: Project, creator: User) -> Job:
    return do_create_job(Job.Kind.EXPORT, args={"fmt": "sav"}, project=project, created_by=creator)


def _cancel(user: User, job: Job) -> int:
    return api_client(user).post(f"/api/jobs/{job.pk}/cancel/").status_code


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "expected"), [("reviewer", 403), ("outsider", 404)])
def test_others_may_not_cancel_a_job(
    project: Project, annotator: User, who: str, expected: int, request: pytest.FixtureRequest
) -> None:
    # given a job that the annotator started
    job = _export_job(project, annotator)
    # when another member, or someone outside the project, asks to cancel it
    status = _cancel(request.getfixturevalue(who), job)
    # then they are refused and the job runs on
    assert status == expected
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == (Job.Status.QUEUED, False)


@pytest.mark.django_db
def test_creator_manager_and_site_admin_may_cancel(
    project: Project, annotator: User, manager: User
) -> None:
    admin = do_create_user("ada", "ada-pass", "admin")  # a site admin outside the project
    for user in (annotator, manager, admin):
        job = _export_job(project, annotator)
        assert _cancel(user, job) == 200, user.username
        job.refresh_from_db()
        assert (job.status, job.cancel_requested) == (Job.Status.CANCELLED, True)


@pytest.mark.django_db
def test_a_member_may_cancel_their_own_job(project: Project, reviewer: User) -> None:
    job = _export_job(project, reviewer)
    response = api_client(reviewer).post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == Job.Status.CANCELLED
