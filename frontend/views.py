"""Pages. Thin: each one renders a template; the data comes from the API and the websockets."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from jobs.registry import job_kinds


@login_required
def home(request):
    return render(request, "frontend/home.html")


@login_required
def jobs_page(request):
    startable = [
        {"name": kind.name, "title": kind.title}
        for kind in job_kinds().values()
        if request.user.has_perm(f"accounts.{kind.capability}") and kind.name == "worker_check"
    ]
    return render(request, "frontend/jobs.html", {"startable": startable})
