"""Shared fixtures: users of each role, API clients, and the real platform processes (Daphne and a
Celery worker) started against the test database and the broker of the current mode."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

from accounts.roles import Role

REPO = Path(__file__).resolve().parent.parent

# Fast password hashes (eoplatform/settings.py): for this process, whose settings are loaded already, and through
# the environment for the Daphne and worker processes the tests start, which must check the same hashes.
os.environ["CRYOLABEL_TESTS_FAST_PASSWORD_HASHES"] = "1"
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
get_hashers.cache_clear()
get_hashers_by_algorithm.cache_clear()
REALDATA = REPO.parent / "shared" / "realdata"


# --- which tests the second mode runs ----------------------------------------------------------------
DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}


def pytest_collection_modifyitems(config, items):
    """`make test` runs two pytest processes side by side, one per mode, and CRYOLABEL_TEST_RUN tells each which
    tests are its own. Tests whose outcome can depend on the mode (those that touch the database, or the running
    platform with its broker and channel layer) run in both, less those marked `one_mode` (services run only) or
    `embedded_only` (two long tests split between the runs, so that the suite stays under 12 minutes).
    Pure code (networks, readers, thread sizing, ...) runs once, in the embedded run, which is the lighter of the
    two; unless marked postgres_only. Unset (a developer's plain `pytest`), every test runs."""
    run = os.environ.get("CRYOLABEL_TEST_RUN")
    if run not in ("services", "embedded"):
        return
    kept, dropped = [], []
    for item in items:
        uses_db = bool(DB_FIXTURES & set(getattr(item, "fixturenames", ()))) or item.get_closest_marker("django_db")
        if run == "services":
            mine = (bool(uses_db) or item.get_closest_marker("postgres_only") is not None) and \
                item.get_closest_marker("embedded_only") is None
        else:
            mine = not uses_db or item.get_closest_marker("one_mode") is None
        (kept if mine else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# --- settings that outlive their test --------------------------------------------------------------
@pytest.fixture(autouse=True)
def settings_restored():
    """Empty the in-process cache after each test. Fail the test that leaves Django's settings changed, and put
    them back for the tests after it. It happens when an `override_settings` decorator and pytest-django's
    `settings` fixture are mixed in one test: the fixture restores what it found, the decorator's settings, after
    the decorator has ended (a leaked MD5-only PASSWORD_HASHERS once made every later browser log-in fail)."""
    before = settings._wrapped
    yield
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        # The API's rate-limit counters are keyed by user id, and SQLite's rolled-back tests hand the same ids out
        # again: without this, the requests of earlier tests count against a later test's user (a 429).
        caches["default"].clear()
    leaked = settings._wrapped is not before
    if leaked:
        settings._wrapped = before
        get_hashers.cache_clear()
        get_hashers_by_algorithm.cache_clear()
    assert not leaked, "this test left Django's settings changed (override_settings mixed with the settings fixture?)"


# --- users and clients --------------------------------------------------------------------------
@pytest.fixture
def make_user(db):
    from accounts.services import user_create

    counter = iter(range(10_000))

    def _make(role: Role = Role.ANNOTATOR, username: str | None = None, password: str = "pw-for-tests-1"):
        return user_create(username=username or f"{role.value}{next(counter)}", password=password, role=role)

    return _make


@pytest.fixture
def annotator(make_user):
    return make_user(Role.ANNOTATOR, "ann")


@pytest.fixture
def expert(make_user):
    return make_user(Role.EXPERT, "exp")


@pytest.fixture
def admin_user(make_user):
    return make_user(Role.ADMIN, "adm")


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_as(api_client):
    def _as(user):
        api_client.force_authenticate(user=user)
        return api_client

    return _as


def cast_vote(annotator, item, label_mask: int, **kwargs):
    """Vote as the labelling page does, on an item the test chose: the queue leases it to the annotator first
    (counted against the item's k when it is open with room), then the vote goes through `vote_submit`."""
    from datetime import timedelta

    from django.db.models import F
    from django.utils import timezone

    from annotations.models import Assignment, Imagette
    from annotations.services.votes import vote_submit

    imagette_id = getattr(item, "pk", item)
    row = Imagette.objects.get(pk=imagette_id)
    counts = row.queue_state == "open" and row.vote_count + row.reserved_count < settings.CRYOLABEL_VOTES_PER_ITEM
    Assignment.objects.create(imagette_id=imagette_id, annotator=annotator, counted=counts,
                              expires_at=timezone.now() + timedelta(hours=1))
    if counts:
        Imagette.objects.filter(pk=imagette_id).update(reserved_count=F("reserved_count") + 1)
    vote, _ = vote_submit(annotator=annotator, imagette_id=imagette_id, label_mask=label_mask, **kwargs)
    return vote


def wait_for_a_lock_waiter(what: str = "the second writer") -> None:
    """Until some backend of this (PostgreSQL) test database waits on a lock: the second actor of a race test has
    reached the row the first holds. No timing: it polls the server's own view of who waits."""
    import threading

    from django.db import connection

    for _ in range(3000):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return
        threading.Event().wait(0.01)
    raise AssertionError(f"{what} never waited on the lock")


def race_behind_a_lock(first, second, *, what: str = "the second actor"):
    """Two actors on PostgreSQL, each on a thread (and connection) of its own: `first()` runs in a transaction
    held open; `second()` starts then, and must wait on a lock `first` holds (checked: it is not done, and the
    server shows it waiting); then `first` commits and `second` goes on. Returns both futures, done: .result()
    gives each one's value, or raises what it raised."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import wait as futures_wait

    from django.db import close_old_connections, connection, transaction

    holding, go = threading.Event(), threading.Event()

    def run_first():
        try:
            with transaction.atomic():
                value = first()
                holding.set()
                assert go.wait(30), "the race was never released"
            return value
        finally:
            close_old_connections()
            connection.close()

    def run_second():
        try:
            return second()
        finally:
            close_old_connections()
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(run_first)
        try:
            while not holding.wait(0.05):
                if a.done():
                    a.result()  # the first actor failed before holding anything: its own error
            b = pool.submit(run_second)
            wait_for_a_lock_waiter(what)
            assert not b.done(), f"{what} did not wait for the first to commit"
        finally:
            go.set()
        futures_wait([a, b], timeout=60)
    return a, b


def run_async(coroutine):
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps a loop running here."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- real processes -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_env() -> dict[str, str]:
    """Environment pointing a child process at the test database this process uses."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return {"SQLITE_PATH": str(db["NAME"]), "DATABASE_URL": ""}
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return {"DATABASE_URL": f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"}


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **_database_env(), "SECRET_KEY": settings.SECRET_KEY, "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return {k: v for k, v in env.items() if v != "" or k == "DATABASE_URL"}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def start_process(name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> Process:
    log_path = log_dir / f"{name}.log"
    handle = open(log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
    popen = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Process(name, popen, log_path)


def start_worker(log_dir: Path, hostname: str, queues: str = "cpu,gpu", **env: str) -> Process:
    worker = start_process(
        f"worker-{hostname.split('@')[0]}",
        [sys.executable, "-m", "celery", "-A", "eoplatform", "worker", "-Q", queues, "--concurrency", "1",
         "-n", hostname, "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        log_dir,
        child_env(**env),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if " ready." in worker.log():
            return worker
        if worker.popen.poll() is not None:
            raise RuntimeError(f"celery worker exited:\n{worker.log()[-3000:]}")
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"celery worker not ready in 60 s:\n{worker.log()[-3000:]}")


@dataclass
class Platform:
    base_url: str
    ws_url: str
    log_dir: Path
    processes: list[Process] = field(default_factory=list)

    def login(self, username: str, password: str = "pw-for-tests-1") -> httpx.Client:
        """Log in through the real login form, as a browser does; the client keeps the cookies."""
        client = httpx.Client(base_url=self.base_url, timeout=20, follow_redirects=False)
        client.get("/accounts/login/")
        response = client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
            headers={"Referer": f"{self.base_url}/accounts/login/"},
        )
        assert response.status_code == 302, f"login failed: {response.status_code} {response.text[:300]}"
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        client.headers["Referer"] = f"{self.base_url}/"
        return client


@pytest.fixture(scope="session")
def platform_servers(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Platform]:
    """Daphne and one Celery worker, real processes on the test database and this mode's broker."""
    log_dir = tmp_path_factory.mktemp("platform-logs")
    port = free_port()
    base = f"127.0.0.1:{port}"
    env = child_env(ALLOWED_HOSTS="127.0.0.1,localhost", CSRF_TRUSTED_ORIGINS=f"http://{base}", DEBUG="1")
    web = start_process(
        "daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "eoplatform.asgi:application"],
        log_dir, env,
    )
    platform = Platform(f"http://{base}", f"ws://{base}", log_dir, [web])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{platform.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if web.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not come up:\n{web.log()[-3000:]}")
            time.sleep(0.2)
        platform.processes.append(start_worker(log_dir, "main@cryolabel-tests"))
        yield platform
    finally:
        for process in platform.processes:
            process.stop()


@pytest.fixture
def platform(platform_servers, transactional_db) -> Platform:
    """The running platform, with rows that are committed (so the other processes see them)."""
    return platform_servers


# --- imagettes ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def demo_imagette_files(tmp_path_factory) -> Path:
    """60 synthetic WV imagettes in the mixed layout (SAFE folders and zips, GeoTIFF, PNG), with
    their ground_truth.csv; written once per session."""
    from demo.synthetic import write_demo_imagettes

    out = tmp_path_factory.mktemp("wv-demo")
    write_demo_imagettes(out, 60, seed=7, layout="mixed", size=64)
    return out


@pytest.fixture
def ingested(db, demo_imagette_files, settings, tmp_path):
    """The demo imagettes ingested (MEDIA_ROOT in a temporary folder); returns the Imagette rows."""
    from annotations.models import Imagette
    from annotations.services.ingest import ingest_paths

    settings.MEDIA_ROOT = tmp_path / "media"
    report = ingest_paths([demo_imagette_files])
    assert not report.errors, report.errors
    return list(Imagette.objects.order_by("id"))


@pytest.fixture
def platform_imagettes(platform, demo_imagette_files):
    """The demo imagettes ingested where the running Daphne and worker find them (the shared
    MEDIA_ROOT), as committed rows."""
    from annotations.models import Imagette
    from annotations.services.ingest import ingest_paths

    report = ingest_paths([demo_imagette_files])
    assert not report.errors, report.errors
    return list(Imagette.objects.order_by("id"))
