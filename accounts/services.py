"""Writes on users and roles."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts.models import Capability
from accounts.roles import CAPABILITIES, ROLE_CAPABILITIES, Role


@transaction.atomic
def roles_ensure() -> dict[Role, Group]:
    """Create (or bring up to date) the role groups and their permissions. Idempotent."""
    content_type = ContentType.objects.get_for_model(Capability, for_concrete_model=False)
    permissions = {}
    for codename, label in CAPABILITIES.items():
        permission, _ = Permission.objects.update_or_create(
            content_type=content_type, codename=codename, defaults={"name": label}
        )
        permissions[codename] = permission
    groups = {}
    for role, capabilities in ROLE_CAPABILITIES.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        group.permissions.set([permissions[c] for c in capabilities])
        groups[role] = group
    return groups


@transaction.atomic
def user_create(*, username: str, password: str, role: Role, email: str = "", password_hash: str | None = None,
                groups: dict[Role, Group] | None = None) -> User:
    """Create a user with one role. Admins also get Django's staff flag for /admin/. `password_hash`, when given,
    is stored as it is (a hash of `password` made beforehand, see accounts.demo_passwords); `groups`, the role
    groups when the caller has them already (roles_ensure), for several users in a row."""
    if User.objects.filter(username=username).exists():
        raise ValueError(f"user {username!r} already exists")
    groups = groups or roles_ensure()
    # What create_user does (normalised name and address), with a ready hash in place of hashing when given.
    user = User(username=User.normalize_username(username), email=User.objects.normalize_email(email),
                password=password_hash if password_hash is not None else make_password(password))
    user.save()
    user_set_role(user=user, role=role, groups=groups)
    return user


@transaction.atomic
def user_set_role(*, user: User, role: Role, groups: dict[Role, Group] | None = None) -> User:
    groups = groups or roles_ensure()
    user.groups.remove(*groups.values())
    user.groups.add(groups[role])
    user.is_staff = role == Role.ADMIN
    user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


def user_role(user: User) -> Role | None:
    """The highest role a user holds (superusers count as admin)."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in (Role.ADMIN, Role.EXPERT, Role.ANNOTATOR):
        if role.value in names:
            return role
    return None


def token_for(*, user: User) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
