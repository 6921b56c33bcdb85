"""Predict endpoints (see inference.api_urls)."""

from django.urls import path

from inference import api_predict

urlpatterns = [
    path("predict/", api_predict.PredictApi.as_view(), name="predict"),
    path("predictions/", api_predict.PredictionListApi.as_view(), name="prediction-list"),
]
