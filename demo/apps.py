from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo-only code, as an app for its commands (`demo_data`, `demo_setup`); it has no models."""

    name = "demo"
    verbose_name = "Demo data and the simulated crowd"
