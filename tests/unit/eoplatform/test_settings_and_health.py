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


def settings_under(tmp_path, **env) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DEBUG", "ALLOWED_HOSTS"}}
    base.update({"DJANGO_SETTINGS_MODULE": "eoplatform.settings", "CRYOLABEL_VAR_DIR": str(tmp_path)}, **env)
    out = subprocess.run([sys.executable, "-c", PRINT_SETTINGS], cwd=REPO, env=base, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
        REDIS_URL="redis://r:6379/2", DEBUG="false", ALLOWED_HOSTS="cryolabel.example.org",
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
    from eoplatform import health

    def broken_cursor():
        raise ConnectionError("database is down")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = health.healthz(rf.get("/healthz"))
    assert response.status_code == 503 and "database is down" in json.loads(response.content)["problems"]["database"]


def test_the_icon_is_served_and_favicon_ico_finds_it(client):
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("frontend/img/favicon.svg")
    assert finders.find("frontend/img/favicon.svg")  # the file the redirect and the pages' <link> name exists
    login = client.get("/accounts/login/").content.decode()
    assert 'rel="icon"' in login and "frontend/img/favicon.svg" in login
