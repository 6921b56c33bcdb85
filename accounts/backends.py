"""Django's ModelBackend with each user's permission set kept briefly in the process.

Why: every API request checks a capability (`HasCapability`), and ModelBackend answers with two queries
(user and group permissions) each time, since its own cache lives on the user object, new per request.
On the crowd queue those two queries were a fifth of a request. Here the set is kept in memory for
PERMISSIONS_CACHE_SECONDS, keyed by the user and their superuser flag. A role change made in this process
(`user_set_role`, the admin, anything that changes groups) takes effect at once; other server processes
see it within PERMISSIONS_CACHE_SECONDS.
"""

from __future__ import annotations

import threading
import time

from axes.backends import AxesStandaloneBackend
from django.contrib.auth.backends import ModelBackend
from django.db.models.signals import m2m_changed, post_delete, post_save

PERMISSIONS_CACHE_SECONDS = 10.0

_lock = threading.Lock()
_cache: dict[tuple, tuple[float, frozenset[str]]] = {}


def _key(user) -> tuple:
    # date_joined tells apart two users given the same id (a test database recreated under a live server).
    return (user.pk, user.is_superuser, user.date_joined)


def permissions_forget(*_args, **_kwargs) -> None:
    """Drop every cached permission set (roles or group permissions changed)."""
    with _lock:
        _cache.clear()


class CachedModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            key, now = _key(user_obj), time.monotonic()
            with _lock:
                hit = _cache.get(key)
            if hit is not None and hit[0] > now:
                user_obj._perm_cache = set(hit[1])
            else:
                permissions = super().get_all_permissions(user_obj)  # queries, and sets user_obj._perm_cache
                with _lock:
                    if len(_cache) > 10_000:
                        _cache.clear()
                    _cache[key] = (now + PERMISSIONS_CACHE_SECONDS, frozenset(permissions))
        return user_obj._perm_cache


def connect_signals() -> None:
    from django.contrib.auth.models import Group, Permission, User

    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(permissions_forget, sender=through, dispatch_uid=f"perm-forget-{through.__name__}")
    for model in (User, Group, Permission):
        post_save.connect(permissions_forget, sender=model, dispatch_uid=f"perm-forget-save-{model.__name__}")
        post_delete.connect(permissions_forget, sender=model, dispatch_uid=f"perm-forget-delete-{model.__name__}")


class LoginThrottle(AxesStandaloneBackend):
    """django-axes' lock-out check for log-ins that come with a request (the log-in pages). A script or command
    calling `authenticate()` without one has no client to throttle: it goes straight to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
