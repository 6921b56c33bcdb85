from django.urls import path

from jobs.api import JobViewSet

urlpatterns = [
    path("jobs/", JobViewSet.as_view({"get": "list", "post": "create"}), name="job-list"),
    path("jobs/<str:pk>/", JobViewSet.as_view({"get": "retrieve"}), name="job-detail"),
    path("jobs/<str:pk>/cancel/", JobViewSet.as_view({"post": "cancel"}), name="job-cancel"),
]
