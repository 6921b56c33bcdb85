"""Pages. Thin: each one renders a template; the data comes from the API and the websockets."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import ROLE_CAPABILITIES, Role, perm
from accounts.services import user_role
from annotations import kinds
from annotations.models import ScenePolygon
from annotations.models.track import LABEL_CODES
from annotations.readers.sigrid3 import STAGES
from annotations.services.track_labels import SOURCE_CODES
from annotations.tiles import DB_LIMITS, DEFAULT_DB, polar_grid_specs
from annotations.wv_classes import WV_CLASSES
from inference.services.track_predict import LEAD_PROBABILITY
from jobs.registry import job_kinds
from training.specs import IMAGETTE_NETWORK, SPECS


def roles_with(*, capability: str) -> list[Role]:
    """The roles that hold a capability, lowest first."""
    return [role for role, capabilities in ROLE_CAPABILITIES.items() if capability in capabilities]


def who_may(*, capability: str) -> str:
    """'experts and admins': the roles that hold a capability, in words."""
    names = [f"{role.value}s" for role in roles_with(capability=capability)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def forbidden_page(request: HttpRequest, *, capability: str) -> HttpResponse:
    """A signed-in user whose role may not see a page: a 403 that says which roles may, and who they are."""
    return render(request, "frontend/forbidden.html",
                  {"who_may": who_may(capability=capability), "your_role": user_role(request.user)}, status=403)


def role_required(capability: str) -> Callable:
    """Anonymous visitors go to the login page; a signed-in user without the capability gets the 403 page
    (Django's permission_required would send them to a login form they cannot get past)."""
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(perm(capability)):
                return forbidden_page(request, capability=capability)
            return view(request, *args, **kwargs)
        return wrapped
    return decorator


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


@role_required("label")
def label_page(request):
    """The annotator's page: a grid of imagettes, the 10 classes on keys 1-0."""
    return render(request, "frontend/label.html", {"classes": _classes()})


@role_required("review")
def curation_page(request):
    """Experts: items by lowest crowd agreement; a decision overrides the crowd."""
    return render(request, "frontend/curation.html", {"classes": _classes()})


@role_required("review")
def overview_page(request):
    return render(request, "frontend/overview.html", {"classes": _classes()})


@role_required("review")
def models_page(request):
    """The model registry of one network (?network=, the classifier by default): versions, metrics, loss curves,
    the classifier's confusion matrices; Train, Predict and Activate."""
    name = request.GET.get("network") or IMAGETTE_NETWORK
    spec = SPECS.get(name) or SPECS[IMAGETTE_NETWORK]
    networks = [{"name": s.name, "title": s.title, "current": s.name == spec.name} for s in SPECS.values()]
    setup = {**spec.page_setup(), "noun": kinds.kind_entry(spec.item_kind).noun}
    return render(request, "frontend/models.html", {"classes": _classes(), "network": spec.name, "setup": setup,
                                                    "networks": networks})


@role_required("ingest")
def ingest_page(request):
    return render(request, "frontend/ingest.html")


@role_required("review")
def review_page(request):
    """Experts: the active-learning review queue (uncertain / disagreeing / random), keyboard first."""
    return render(request, "frontend/review.html", {"classes": _classes()})


@login_required
def map_page(request):
    """The map of detections: every imagette at its centre, coloured by predicted or curated class."""
    return render(request, "frontend/map.html", {"classes": _classes()})


@role_required("export")
def export_page(request):
    """Admins: versioned exports of a curated snapshot (ImageFolder, CSV, STAC), as a job with a download link."""
    return render(request, "frontend/export.html", {"classes": _classes()})


# How the polar map draws each polygon class, and the key that picks it.
POLYGON_CLASSES = {ScenePolygon.Label.ICE: ("i", "#e8f1f8"), ScenePolygon.Label.LEAD: ("l", "#e4572e"),
                   ScenePolygon.Label.WATER: ("w", "#1f4e79")}


@role_required("label")
def scenes_page(request, pk: int | None = None):
    """The polar map: Extra Wide scenes on their polar stereographic grid, their HH / HV / false-colour tiles, and the
    ice / lead / open-water polygons people draw on them with a sea-ice concentration, live between people."""
    setup = {
        "grids": polar_grid_specs(), "scene": pk, "db_limits": DB_LIMITS, "default_db": DEFAULT_DB,
        "classes": [{"value": label.value, "name": label.label, "key": key, "color": color}
                    for label, (key, color) in POLYGON_CLASSES.items()],
        "stages": sorted(set(STAGES.values()), key=list(STAGES.values()).index),
    }
    return render(request, "frontend/scenes.html", {"setup": setup, "polygon_classes": setup["classes"]})


# How the track pages draw each waveform label, and the key that marks a range with it.
TRACK_LABELS = [("lead", "lead", "l", "#e4572e"), ("not_lead", "not lead", "n", "#2b6cb0"),
                ("unknown", "unknown", "u", "#9aa5ad")]


@role_required("label")
def tracks_page(request, pk: int | None = None):
    """Altimetry tracks on the polar map (/tracks/), and one pass (/tracks/<id>/): its nadir points coloured by
    label over the collocated scenes, the waveform viewer below; ranges marked lead / not lead / unknown, live; the
    `leads` prediction shown, and reviewed by segments by those who may review (the template reads `can`)."""
    setup = {
        "grids": polar_grid_specs(), "track": pk,
        "labels": [{"value": value, "name": name, "key": key, "color": color, "code": LABEL_CODES[value]}
                   for value, name, key, color in TRACK_LABELS],
        "source_codes": {str(k): v for k, v in SOURCE_CODES.items()},
        "lead_probability": LEAD_PROBABILITY,  # from here a waveform is predicted lead (as the review counts it)
    }
    return render(request, "frontend/tracks.html", {"setup": setup, "track_labels": setup["labels"], "track_id": pk})
