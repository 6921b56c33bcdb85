from importlib import import_module
from importlib.util import find_spec

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from eoplatform.api_root import api_root
from eoplatform.health import healthz

# Admin registrations, without autodiscovery (see INSTALLED_APPS).
for _module in ("django.contrib.auth.admin", "rest_framework.authtoken.admin", "django_celery_results.admin"):
    import_module(_module)
for _app in ("accounts", "jobs", "annotations", "training", "inference"):
    if find_spec(f"{_app}.admin"):
        import_module(f"{_app}.admin")

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (the API's JSON, the admin).
    path("favicon.ico", RedirectView.as_view(url=static("frontend/img/favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", api_root, name="api-root"),
    path("api/v1/", include("jobs.api_urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("annotations.api_urls")),
    path("api/v1/", include("training.api_urls")),
    path("api/v1/", include("inference.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("frontend.urls")),
]
