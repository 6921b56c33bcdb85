"""The kinds of item the platform labels. Every snapshot, model version, prediction, review and export belongs to
one of them; the layers above look a kind up (training.specs: which network learns it) instead of naming it."""

from django.db import models


class ItemKind(models.TextChoices):
    IMAGETTES = "imagettes", "Wave Mode imagettes"
    SCENES = "scenes", "Extra Wide scenes"
    TRACKS = "tracks", "altimetry tracks"


# The kinds this platform ingests, labels and trains on today; the others are announced (the commands and the API
# say "not available yet" for them).
AVAILABLE: tuple[str, ...] = (ItemKind.IMAGETTES,)
