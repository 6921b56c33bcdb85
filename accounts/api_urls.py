from django.urls import path

from accounts.api import MeApi, TokenApi

urlpatterns = [
    path("me/", MeApi.as_view(), name="me"),
    path("token/", TokenApi.as_view(), name="token"),
]
