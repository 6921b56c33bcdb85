from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Background jobs"

    def ready(self) -> None:
        from jobs import worker_hooks  # noqa: F401  (connects the worker start-up sweep)
