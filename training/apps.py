from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Snapshots, networks and training"

    def ready(self) -> None:
        # Imported here, where Django's apps are loaded. annotations tells training when labels settle
        # (annotations.hooks): enough new curated labels start a training on their own. And training fills in its
        # parts of each kind of item (annotations.kinds): how its snapshots are made and read, how it is exported.
        from annotations import hooks, kinds
        from annotations.kinds import ItemKind
        from training.services.export_retention import snapshot_latest_if_unchanged
        from training.services.retrain import retrain_maybe_submit
        from training.services.scene_snapshots import (
            scene_snapshot_create,
            scene_snapshot_latest_if_unchanged,
            scene_snapshot_samples,
        )
        from training.services.snapshots import snapshot_create, snapshot_samples
        from training.services.track_snapshots import (
            track_snapshot_create,
            track_snapshot_latest_if_unchanged,
            track_snapshot_samples,
        )

        hooks.labels_settled.register(retrain_maybe_submit)
        kinds.part_register(ItemKind.IMAGETTES, "snapshot_create", snapshot_create)
        kinds.part_register(ItemKind.IMAGETTES, "snapshot_unchanged", snapshot_latest_if_unchanged)
        kinds.part_register(ItemKind.IMAGETTES, "snapshot_samples", snapshot_samples)
        kinds.part_register(ItemKind.IMAGETTES, "export_writers", _imagette_writers)
        kinds.part_register(ItemKind.SCENES, "snapshot_create", scene_snapshot_create)
        kinds.part_register(ItemKind.SCENES, "snapshot_unchanged", scene_snapshot_latest_if_unchanged)
        kinds.part_register(ItemKind.SCENES, "snapshot_samples", scene_snapshot_samples)
        kinds.part_register(ItemKind.SCENES, "export_writers", _scene_writers)
        kinds.part_register(ItemKind.TRACKS, "snapshot_create", track_snapshot_create)
        kinds.part_register(ItemKind.TRACKS, "snapshot_unchanged", track_snapshot_latest_if_unchanged)
        kinds.part_register(ItemKind.TRACKS, "snapshot_samples", track_snapshot_samples)
        kinds.part_register(ItemKind.TRACKS, "export_writers", _track_writers)


def _imagette_writers() -> dict:
    # Imported when an export runs: pystac and the writers are not needed to start a web process.
    from training.exports.formats import WRITERS

    return WRITERS


def _scene_writers() -> dict:
    from training.exports.scene_formats import SCENE_WRITERS

    return SCENE_WRITERS


def _track_writers() -> dict:
    from training.exports.track_formats import TRACK_WRITERS

    return TRACK_WRITERS
