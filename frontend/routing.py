from django.urls import path

from frontend.consumers import JobsConsumer, ScenePolygonsConsumer, TrackLabelsConsumer

websocket_urlpatterns = [
    path("ws/jobs/", JobsConsumer.as_asgi()),
    path("ws/scenes/<int:pk>/", ScenePolygonsConsumer.as_asgi()),
    path("ws/tracks/<int:pk>/", TrackLabelsConsumer.as_asgi()),
]
