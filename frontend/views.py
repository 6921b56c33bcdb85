"""Pages. Thin: each one renders a template; the data comes from the API and the websockets."""

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render

from accounts.roles import perm
from annotations.wv_classes import WV_CLASSES
from jobs.registry import job_kinds


def _classes() -> list[dict]:
    return [{"slug": c.slug, "name": c.name, "key": c.key, "color": c.color, "letter": c.letter,
             "description": c.description} for c in WV_CLASSES]


@login_required
def home(request):
    return render(request, "frontend/home.html")


@login_required
def jobs_page(request):
    startable = [
        {"name": kind.name, "title": kind.title}
        for kind in job_kinds().values()
        if request.user.has_perm(perm(kind.capability)) and kind.name == "worker_check"
    ]
    return render(request, "frontend/jobs.html", {"startable": startable})


@permission_required(perm("label"))
def label_page(request):
    """The annotator's page: a grid of imagettes, the 10 classes on keys 1-0."""
    return render(request, "frontend/label.html", {"classes": _classes()})


@permission_required(perm("review"))
def curation_page(request):
    """Experts: items by lowest crowd agreement; a decision overrides the crowd."""
    return render(request, "frontend/curation.html", {"classes": _classes()})


@permission_required(perm("review"))
def overview_page(request):
    return render(request, "frontend/overview.html", {"classes": _classes()})


@permission_required(perm("review"))
def models_page(request):
    """The model registry: versions, metrics, loss curves, confusion matrices; Train and Activate."""
    return render(request, "frontend/models.html", {"classes": _classes()})


@permission_required(perm("ingest"))
def ingest_page(request):
    return render(request, "frontend/ingest.html")


@permission_required(perm("review"))
def review_page(request):
    """Experts: the active-learning review queue (uncertain / disagreeing / random), keyboard first."""
    return render(request, "frontend/review.html", {"classes": _classes()})


@login_required
def map_page(request):
    """The map of detections: every imagette at its centre, coloured by predicted or curated class."""
    return render(request, "frontend/map.html", {"classes": _classes()})


@permission_required(perm("export"))
def export_page(request):
    """Admins: versioned exports of a curated snapshot (ImageFolder, CSV, STAC), as a job with a download link."""
    return render(request, "frontend/export.html", {"classes": _classes()})
