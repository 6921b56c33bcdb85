"""Review endpoints (see inference.api_urls)."""

from django.urls import path

from inference import api_review

urlpatterns = [
    path("review/next/", api_review.ReviewNextApi.as_view(), name="review-next"),
    path("review/<int:imagette_id>/accept/", api_review.ReviewAcceptApi.as_view(), name="review-accept"),
    path("review/<int:imagette_id>/correct/", api_review.ReviewCorrectApi.as_view(), name="review-correct"),
]
