from django.urls import include, path

from annotations import api, api_scenes

urlpatterns = [
    path("imagettes/", api.ImagetteListApi.as_view(), name="imagette-list"),
    path("imagettes/<int:pk>/", api.ImagetteDetailApi.as_view(), name="imagette-detail"),
    path("imagettes/<int:pk>/preview/", api.ImagettePreviewApi.as_view(), name="imagette-preview"),
    path("imagettes/<int:pk>/pixels/", include("annotations.api_pixels")),
    path("imagettes/<int:pk>/votes/", api.ImagetteVotesApi.as_view(), name="imagette-votes"),
    path("imagettes/<int:pk>/decision/", api.DecisionApi.as_view(), name="imagette-decision"),
    path("imagettes/<int:pk>/gold/", api.GoldApi.as_view(), name="imagette-gold"),
    path("queue/next/", api.NextItemsApi.as_view(), name="queue-next"),
    path("votes/", api.VoteListCreateApi.as_view(), name="vote-list"),
    path("votes/<int:pk>/", api.VoteDetailApi.as_view(), name="vote-detail"),
    path("consensus/", api.CurationApi.as_view(), name="consensus-list"),
    path("consensus/run/", api.ConsensusRunApi.as_view(), name="consensus-run"),
    path("overview/", api.OverviewApi.as_view(), name="overview"),
    path("uploads/", api.UploadApi.as_view(), name="upload"),
    path("scenes/", api_scenes.SceneListApi.as_view(), name="scene-list"),
    path("scenes/<int:pk>/", api_scenes.SceneDetailApi.as_view(), name="scene-detail"),
    # z, x, y as text: the service refuses what is not a tile address with a 400 that says why (with <int:> a
    # negative or non-numeric one would find no route, a bare 404).
    path("scenes/<int:pk>/tiles/<str:z>/<str:x>/<str:y>.<str:fmt>", api_scenes.SceneTileApi.as_view(),
         name="scene-tile"),
    path("", include("annotations.api_scene_polygons")),
    # A track's automatic labels (collocation with scenes): annotations/api_track_collocation.py.
    path("", include("annotations.api_track_collocation")),
    # Tracks: list, detail, the waveform viewer's binary, label ranges (mark / undo): annotations/api_tracks.py.
    path("", include("annotations.api_tracks")),
]
