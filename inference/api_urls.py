"""REST endpoints of the inference layer: predictions (inference.urls_predict), the review queue
(inference.urls_review), the map of detections (inference.api_map), and the scenes' and tracks' predictions."""

from django.urls import include, path

urlpatterns = [
    path("", include("inference.urls_predict")),
    path("", include("inference.urls_review")),
    path("map/", include("inference.api_map")),
    path("", include("inference.api_scene_predictions")),
    path("", include("inference.api_track_predictions")),
]
