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
        kinds.part_register(ItemKind.SCENES, "review_unit", _scene_review())
        kinds.part_register(ItemKind.TRACKS, "predictions", _track_predictions())
        kinds.part_register(ItemKind.TRACKS, "review_unit", _track_review())


def _scene_predictions():
    from inference.services.scene_predict import _source

    return _source()


def _scene_review():
    # An expert reviews a scene by regions: the least sure scenes first; a predicted region accepted as a polygon,
    # or corrected by editing the polygons (annotations.services.scene_polygons).
    from annotations.services.scene_polygons import polygon_edit
    from inference.services.review import ReviewUnit
    from inference.services.scene_review import scene_region_accept, scenes_to_review

    return ReviewUnit("scene region", ("uncertain",), scenes_to_review, scene_region_accept, polygon_edit)


def _track_predictions():
    from inference.services.track_predict import _source

    return _source()


def _track_review():
    # An expert reviews a track by segments: the least sure tracks first, within one its most disputed segments; a
    # segment's predicted labels accepted as ranges, or corrected by marking a range (as on the track page).
    from annotations.services.track_labels import track_range_mark
    from inference.services.review import ReviewUnit
    from inference.services.track_review import track_segment_accept, tracks_to_review

    return ReviewUnit("track segment", ("uncertain",), tracks_to_review, track_segment_accept, track_range_mark)
