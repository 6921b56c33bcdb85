from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Predictions and review"

    def ready(self) -> None:
        # Imported here, where Django's apps are loaded. What annotations asks of the prediction layer
        # (annotations.hooks): an expert's decision takes the item out of the review queue, and the imagette APIs
        # show the active model's prediction.
        # And it fills in its parts of each kind of item (annotations.kinds): where predictions go, what is reviewed.
        from annotations import hooks, kinds
        from annotations.kinds import ItemKind
        from inference.selectors import active_prediction_prefetch
        from inference.services.predict import IMAGETTE_PREDICTIONS
        from inference.services.review import IMAGETTE_REVIEW, predictions_mark_reviewed

        hooks.expert_decided.register(predictions_mark_reviewed)
        hooks.prediction_prefetch.register(active_prediction_prefetch)
        kinds.part_register(ItemKind.IMAGETTES, "predictions", IMAGETTE_PREDICTIONS)
        kinds.part_register(ItemKind.IMAGETTES, "review_unit", IMAGETTE_REVIEW)
        kinds.part_register(ItemKind.SCENES, "predictions", _scene_predictions())


def _scene_predictions():
    from inference.services.scene_predict import _source

    return _source()
