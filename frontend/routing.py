from django.urls import path

from frontend.consumers import JobsConsumer, ScenePolygonsConsumer

websocket_urlpatterns = [
    path("ws/jobs/", JobsConsumer.as_asgi()),
    path("ws/scenes/<int:pk>/", ScenePolygonsConsumer.as_asgi()),
]
