from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Snapshots, networks and training"

    def ready(self) -> None:
        # Imported here, where Django's apps are loaded. annotations tells training when labels settle
        # (annotations.hooks): enough new curated labels start a training on their own.
        from annotations import hooks
        from training.services.retrain import retrain_maybe_submit

        hooks.labels_settled.register(retrain_maybe_submit)
