"""REST endpoints of the inference layer: predictions (inference.urls_predict) and the review queue
(inference.urls_review)."""

from django.urls import include, path

urlpatterns = [
    path("", include("inference.urls_predict")),
    path("", include("inference.urls_review")),
]
