from django.urls import path

from training import api, api_export

urlpatterns = [
    path("snapshots/", api.SnapshotListApi.as_view(), name="snapshot-list"),
    path("models/", api.ModelVersionListApi.as_view(), name="model-list"),
    path("models/<int:pk>/activate/", api.ModelActivateApi.as_view(), name="model-activate"),
    path("train/", api.TrainApi.as_view(), name="train"),
    *api_export.urlpatterns,
]
