"""accounts: roles as groups with permissions, each including the one below."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts.roles import ROLE_CAPABILITIES, Role, perm
from accounts.services import user_create, user_role

pytestmark = pytest.mark.django_db


def test_groups_exist_after_migrate_with_their_permissions():
    for role, capabilities in ROLE_CAPABILITIES.items():
        group = Group.objects.get(name=role.value)
        assert set(group.permissions.values_list("codename", flat=True)) == set(capabilities)


@pytest.mark.parametrize(
    ("role", "allowed", "denied"),
    [
        (Role.ANNOTATOR, {"label"}, {"review", "train", "ingest", "export", "view_all_jobs"}),
        (Role.EXPERT, {"label", "review", "view_all_jobs"}, {"train", "ingest", "export", "manage_users"}),
        (Role.ADMIN, {"label", "review", "train", "ingest", "export", "manage_users"}, set()),
    ],
)
def test_each_role_may_do_what_it_should_and_no_more(role, allowed, denied):
    user = user_create(username=f"u-{role}", password="pw-for-tests-1", role=role)
    assert user_role(user) == role
    assert all(user.has_perm(perm(c)) for c in allowed)
    assert not any(user.has_perm(perm(c)) for c in denied)
    assert user.is_staff == (role == Role.ADMIN)


def test_duplicate_user_is_refused():
    user_create(username="dup", password="pw-for-tests-1", role=Role.ANNOTATOR)
    with pytest.raises(ValueError, match="already exists"):
        user_create(username="dup", password="pw-for-tests-1", role=Role.EXPERT)


def test_demo_users_command_is_idempotent_and_prints_credentials(capsys):
    call_command("create_demo_users")
    call_command("create_demo_users")
    out = capsys.readouterr().out
    assert "annotator-demo" in out and "expert-demo" in out and "admin-demo" in out
    from django.contrib.auth import authenticate

    for username, role in (("annotator", Role.ANNOTATOR), ("expert", Role.EXPERT), ("admin", Role.ADMIN)):
        user = authenticate(username=username, password=f"{username}-demo")
        assert user is not None and user_role(user) == role
