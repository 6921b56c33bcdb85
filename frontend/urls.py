from django.urls import path

from frontend import views

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.jobs_page, name="jobs"),
    path("label/", views.label_page, name="label"),
    path("curation/", views.curation_page, name="curation"),
    path("overview/", views.overview_page, name="overview"),
    path("ingest/", views.ingest_page, name="ingest"),
    path("models/", views.models_page, name="models"),
    path("review/", views.review_page, name="review"),
    path("map/", views.map_page, name="map"),
    path("scenes/", views.scenes_page, name="scenes"),
    path("scenes/<int:pk>/", views.scenes_page, name="scene"),
    path("tracks/", views.tracks_page, name="tracks"),
    path("tracks/<int:pk>/", views.tracks_page, name="track"),
    path("export/", views.export_page, name="export"),
]
