from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Predictions and review"

    def ready(self) -> None:
        # Imported here, where Django's apps are loaded. What annotations asks of the prediction layer
        # (annotations.hooks): an expert's decision takes the item out of the review queue, and the imagette APIs
        # show the active model's prediction.
        from annotations import hooks
        from inference.selectors import active_prediction_prefetch
        from inference.services.review import predictions_mark_reviewed

        hooks.expert_decided.register(predictions_mark_reviewed)
        hooks.prediction_prefetch.register(active_prediction_prefetch)
