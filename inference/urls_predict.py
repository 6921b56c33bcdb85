"""Predict endpoints (see inference.api_urls)."""

urlpatterns: list = []
