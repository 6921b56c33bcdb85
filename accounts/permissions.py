"""DRF permission classes by capability: `HasCapability("train")` on a view denies the others."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.roles import perm


def HasCapability(capability: str) -> type[BasePermission]:  # noqa: N802 (reads as a class)
    permission_name = perm(capability)

    class _HasCapability(BasePermission):
        message = f"Your role does not allow this (needs '{capability}')."

        def has_permission(self, request, view) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perm(permission_name))

    _HasCapability.__name__ = f"HasCapability_{capability}"
    return _HasCapability
