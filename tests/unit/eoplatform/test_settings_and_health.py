"""eoplatform.settings reads the environment; /healthz answers 200 only when DB and broker do."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

PRINT_SETTINGS = """
import django, json
from django.conf import settings
django.setup()
print(json.dumps({
    "db": settings.DATABASES["default"]["ENGINE"], "db_name": str(settings.DATABASES["default"]["NAME"]),
    "broker": settings.CELERY_BROKER_URL, "transport": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"], "debug": settings.DEBUG,
    "hosts": settings.ALLOWED_HOSTS,
}))
"""


def settings_under(tmp_path, check=True, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY"}}
    base.update({"DJANGO_SETTINGS_MODULE": "eoplatform.settings", "CRYOLABEL_VAR_DIR": str(tmp_path)}, **env)
    out = subprocess.run([sys.executable, "-c", PRINT_SETTINGS], cwd=REPO, env=base, capture_output=True,
                         text=True, check=check)
    return json.loads(out.stdout.strip().splitlines()[-1]) if check else out


def test_debug_is_off_unless_asked_and_a_deployment_needs_its_own_secret_key(tmp_path):
    assert settings_under(tmp_path)["debug"] is False
    assert settings_under(tmp_path, DEBUG="1")["debug"] is True
    # The embedded mode keeps a random key of its own, private to this user, the same at every start.
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50 and (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    settings_under(tmp_path)
    assert (tmp_path / "secret_key").read_text() == key
    refused = settings_under(tmp_path / "deployed", check=False, DATABASE_URL="postgres://u:p@db.example:5432/c")
    assert refused.returncode != 0 and "SECRET_KEY is not set" in refused.stderr
    assert "change-me" not in (REPO / "docker-compose.yml").read_text()


def test_embedded_defaults(tmp_path):
    s = settings_under(tmp_path)
    assert s["db"] == "django.db.backends.sqlite3" and s["db_name"].startswith(str(tmp_path))
    assert s["broker"] == "filesystem://"
    assert s["transport"]["data_folder_in"] == s["transport"]["data_folder_out"]
    assert (tmp_path / "broker" / "queue").is_dir() and (tmp_path / "broker" / "processed").is_dir()
    assert s["layer"] == "channels.layers.InMemoryChannelLayer"


def test_deployed_settings_and_no_leaking_transport_options(tmp_path):
    s = settings_under(
        tmp_path, DATABASE_URL="postgres://u:p@db.example:5432/cryo", CELERY_BROKER_URL="redis://r:6379/1",
        REDIS_URL="redis://r:6379/2", DEBUG="false", ALLOWED_HOSTS="cryolabel.example.org", SECRET_KEY="s3cret",
    )
    assert s["db"] == "django.db.backends.postgresql" and s["db_name"] == "cryo"
    assert s["broker"] == "redis://r:6379/1"
    assert not any(k.startswith("data_folder") or k == "processed_folder" for k in s["transport"])
    assert s["layer"] == "channels_redis.core.RedisChannelLayer"
    assert s["debug"] is False and s["hosts"] == ["cryolabel.example.org"]
    assert not (tmp_path / "broker").exists()


def test_the_package_is_not_named_platform():
    import platform

    assert platform.python_version().startswith("3.11")
    assert not (REPO / "platform").exists()


@pytest.mark.django_db
def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.django_db
def test_healthz_503_when_the_broker_does_not_answer(client, monkeypatch):
    from eoplatform.celery import app

    original = app.connection_for_write
    monkeypatch.setattr(app, "connection_for_write", lambda: original(url="redis://127.0.0.1:1/0"))
    response = client.get("/healthz")
    assert response.status_code == 503 and "broker" in response.json()["problems"]


def test_healthz_503_when_the_database_does_not_answer(monkeypatch, rf):
    from django.db.backends.base.base import BaseDatabaseWrapper

    from eoplatform import health

    def broken_cursor(self):
        raise ConnectionError("database is down")

    # On the class: the probe runs in a thread of its own, with a connection of its own.
    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", broken_cursor)
    response = health.healthz(rf.get("/healthz"))
    assert response.status_code == 503 and "database is down" in json.loads(response.content)["problems"]["database"]


def test_the_icon_is_served_and_favicon_ico_finds_it(client):
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("frontend/img/favicon.svg")
    assert finders.find("frontend/img/favicon.svg")  # the file the redirect and the pages' <link> name exists
    login = client.get("/accounts/login/").content.decode()
    assert 'rel="icon"' in login and "frontend/img/favicon.svg" in login


def test_healthz_answers_503_when_a_check_hangs_and_does_not_pile_up_threads(monkeypatch, rf, settings):
    """An unreachable database can hold a connection attempt for a minute: the probe answers at its deadline,
    and while that check is still stuck the next probe answers at once instead of starting another."""
    import threading

    from eoplatform import health

    settings.CRYOLABEL_HEALTH_TIMEOUT_SECONDS = 0.2
    release, calls = threading.Event(), []

    def hangs():
        calls.append(1)
        release.wait(60)
        return None

    monkeypatch.setattr(health, "check_database", hangs)
    monkeypatch.setattr(health, "check_broker", lambda: None)
    try:
        first = health.healthz(rf.get("/healthz"))
        assert first.status_code == 503
        assert json.loads(first.content)["problems"]["database"] == "did not answer within 0.2 s"
        second = health.healthz(rf.get("/healthz"))
        assert second.status_code == 503 and "still waiting" in json.loads(second.content)["problems"]["database"]
        assert len(calls) == 1
    finally:
        release.set()
    health._PROBES["database"]._running.result(60)
    assert health.healthz(rf.get("/healthz")).status_code == 200 and len(calls) == 2


def test_concurrent_probes_share_the_check_under_way(monkeypatch, rf, settings):
    """Pollers that arrive while a (healthy, slowish) check is under way wait for its answer: 200 for all of
    them, one check run, no "still waiting" 503 for a healthy server."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from eoplatform import health

    settings.CRYOLABEL_HEALTH_TIMEOUT_SECONDS = 30
    started, release, calls = threading.Event(), threading.Event(), []

    def slow():
        calls.append(1)
        started.set()
        release.wait(30)
        return None

    monkeypatch.setattr(health, "check_database", slow)
    monkeypatch.setattr(health, "check_broker", lambda: None)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(health.healthz, rf.get("/healthz"))
        assert started.wait(30)
        others = [pool.submit(health.healthz, rf.get("/healthz")) for _ in range(3)]
        # Release the check only once all four probes wait on it (the future's condition holds its waiters).
        condition = health._PROBES["database"]._running._condition
        while len(condition._waiters) < 4:
            threading.Event().wait(0.01)
        release.set()
        statuses = [f.result(30).status_code for f in (first, *others)]
    assert statuses == [200, 200, 200, 200] and len(calls) == 1
