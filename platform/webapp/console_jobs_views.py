"""Pages: the queues-and-jobs console (jobs per queue, workers, leases; retry and cancel)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from engine.accounts import access
from engine.errors import EngineError, NotFound, PermissionDenied
from engine.jobs import lifecycle, overview
from webapp.users import page_user


@login_required
def jobs_page(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    return render(
        request,
        "console/jobs.html",
        {
            "queues": overview.queues(user),
            "workers": overview.workers_seen(user),
            "leases": overview.leases_held(user),
        },
    )


@login_required
@require_POST
def job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        job = overview.do_retry_job(page_user(request), job_id)
        messages.success(request, f"Job {job.pk} ({job.get_kind_display()}) sent again.")
    except (NotFound, PermissionDenied):
        raise
    except EngineError as exc:
        messages.error(request, str(exc))
    return _back(request)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    user = page_user(request)
    job = access.jobs_for_user(user).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job")
    lifecycle.do_request_cancel(user, job)
    messages.success(request, f"Cancel requested for job {job.pk}.")
    return _back(request)


def _back(request: HttpRequest) -> HttpResponse:
    """To the page the form came from (``next``, same site only), else the jobs page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return redirect(target)
    return redirect("console-jobs")
