from django.db import models

from accounts.roles import CAPABILITIES


class Capability(models.Model):
    """Holds the role permissions; no rows, only a content type for Django's permission system."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = list(CAPABILITIES.items())

    def __str__(self) -> str:
        return "capability"
