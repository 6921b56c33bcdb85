from django.contrib import admin

from inference.models import Prediction


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "imagette", "model_version", "label_mask", "confidence", "entropy", "margin",
                    "mutual_information", "disagrees", "is_current", "reviewed", "created_at"]
    list_filter = ["model_version", "is_current", "reviewed", "disagrees"]
    raw_id_fields = ["imagette", "model_version", "job"]
    readonly_fields = ["created_at"]
