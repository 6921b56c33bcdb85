from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_roles(sender, **kwargs) -> None:
    from accounts.services import roles_ensure

    roles_ensure()


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and roles"

    def ready(self) -> None:
        # Groups and permissions exist after every migrate, on every database.
        post_migrate.connect(_ensure_roles, sender=self)
        from accounts.backends import connect_signals

        connect_signals()
