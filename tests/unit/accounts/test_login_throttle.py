"""Log-in and API throttling (issue 10 §7): repeated wrong passwords lock the account and the client out for a
while (even the right password is refused then), a success clears the count, and API callers are rate-limited."""

import pytest

from accounts.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def few_attempts(settings):
    settings.AXES_FAILURE_LIMIT = 3  # the default is 10; fewer slow password checks here


def _login(client, username, password, ip="10.0.0.1", path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_ten_wrong_passwords_lock_the_account_then_even_the_right_one_is_refused(client, make_user, settings):
    make_user(Role.ADMIN, "admin", password="the-right-one")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "admin", "guess").status_code == 200  # the form again, with its error
    locked = _login(client, "admin", "guess")
    assert locked.status_code == 429 and b"Too many failed log-ins" in locked.content
    right = _login(client, "admin", "the-right-one")
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    # From another address too: the account itself is locked (the admin's log-in page as well).
    assert _login(client, "admin", "the-right-one", ip="10.9.9.9").status_code == 429
    assert _login(client, "admin", "the-right-one", ip="10.9.9.9", path="/admin/login/").status_code == 429


def test_a_client_spraying_many_usernames_is_locked_and_others_are_not(client, make_user, settings):
    make_user(Role.ANNOTATOR, "someone", password="right-password-1")
    for i in range(settings.AXES_FAILURE_LIMIT):
        _login(client, f"user{i}", "guess", ip="10.6.6.6")
    assert _login(client, "someone", "right-password-1", ip="10.6.6.6").status_code == 429
    assert _login(client, "someone", "right-password-1", ip="10.1.1.1").status_code == 302


def test_a_success_clears_the_count(client, make_user, settings):
    make_user(Role.ANNOTATOR, "forgetful", password="right-password-1")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "forgetful", "wrong")
    assert _login(client, "forgetful", "right-password-1").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "forgetful", "wrong")
    assert _login(client, "forgetful", "right-password-1").status_code == 302


def test_api_callers_are_rate_limited(client_as, make_user, monkeypatch):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "5/minute")
    client = client_as(make_user(Role.ANNOTATOR, "busy"))
    codes = [client.get("/api/v1/me/").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    assert "throttled" in client.get("/api/v1/me/").json()["detail"]


def test_a_callers_rate_is_one_counter_that_concurrent_requests_all_count(make_user, monkeypatch):
    """One integer per caller and period (DRF's own throttles rewrote a list of every request's time on each
    request), counted atomically: threads at once neither lose a count nor let more through than the rate."""
    from concurrent.futures import ThreadPoolExecutor

    from django.core.cache import cache
    from rest_framework.test import APIRequestFactory
    from rest_framework.throttling import UserRateThrottle

    from eoplatform.throttling import UserCounterThrottle

    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "40/minute")
    user = make_user(Role.ANNOTATOR, "threads")
    request = APIRequestFactory().get("/api/v1/me/")
    request.user = user

    def ask(_):
        return UserCounterThrottle().allow_request(request, None)

    with ThreadPoolExecutor(8) as pool:
        allowed = list(pool.map(ask, range(60)))
    throttle = UserCounterThrottle()
    key = throttle.get_cache_key(request, None)
    assert allowed.count(True) == 40 and cache.get(key) == 60
    assert throttle.allow_request(request, None) is False and 0 < throttle.wait() <= 60
