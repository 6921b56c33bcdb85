"""Each user's permissions are kept briefly per process (accounts.backends): a capability check after the first
costs no query, and a role change in this process applies at once."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.backends import PERMISSIONS_CACHE_SECONDS, permissions_forget
from accounts.roles import Role, perm
from accounts.services import user_set_role

pytestmark = pytest.mark.django_db


def _fresh(user) -> User:
    return User.objects.get(pk=user.pk)  # a new object per request, as the authentication gives


def test_a_second_request_checks_capabilities_without_a_query(make_user):
    permissions_forget()
    user = make_user(Role.EXPERT, "cached")
    with CaptureQueriesContext(connection) as first:
        assert _fresh(user).has_perm(perm("review"))
    fresh = _fresh(user)
    with CaptureQueriesContext(connection) as second:
        assert fresh.has_perm(perm("review")) and not fresh.has_perm(perm("train"))
    assert len(first) >= 2 and len(second) == 0  # ModelBackend's two permission queries, then none


def test_a_role_change_applies_at_once(make_user):
    user = make_user(Role.ANNOTATOR, "promoted")
    assert not _fresh(user).has_perm(perm("review"))
    user_set_role(user=user, role=Role.EXPERT)
    assert _fresh(user).has_perm(perm("review"))
    user_set_role(user=user, role=Role.ANNOTATOR)
    assert not _fresh(user).has_perm(perm("review")) and _fresh(user).has_perm(perm("label"))


def test_group_membership_changed_elsewhere_in_the_process_applies_at_once(make_user):
    from django.contrib.auth.models import Group

    user = make_user(Role.ANNOTATOR, "grouped")
    assert not _fresh(user).has_perm(perm("export"))
    user.groups.add(Group.objects.get(name=Role.ADMIN.value))  # e.g. the Django admin
    assert _fresh(user).has_perm(perm("export"))


def test_inactive_users_have_no_capability_even_when_cached(make_user):
    user = make_user(Role.ADMIN, "leaving")
    assert _fresh(user).has_perm(perm("train"))
    User.objects.filter(pk=user.pk).update(is_active=False)  # no signal: the cache is not told
    assert not _fresh(user).has_perm(perm("train"))
    assert 0 < PERMISSIONS_CACHE_SECONDS <= 60
