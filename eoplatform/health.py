"""Liveness of the parts the platform cannot work without: the database and the broker.

Each check runs in a thread of its own with a deadline (CRYOLABEL_HEALTH_TIMEOUT_SECONDS, 2.5 s): an unreachable
database can hold a connection attempt for half a minute or more (the pool's wait, the TCP timeout), and a probe
that answers that late is no probe. At most one check of each part runs at a time: a probe that arrives while one
is under way and within its deadline waits for that one's answer (concurrent pollers share it: they used to get
a 503 "still waiting" for a healthy server, 7-12 % of the polls under 50 clients); a check stuck beyond its
deadline is not started again and the answer is 503 at once, so a load balancer polling a sick server does not
pile threads up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from eoplatform.celery import app as celery_app


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not answering"
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()  # the probe thread's own connection goes back to the pool
    return None


def check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            # For the filesystem transport "connecting" touches nothing: make it look at the folder.
            conn.default_channel.queue_declare(queue="cpu", passive=False)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


class _Probe:
    """One check, run in its own thread, at most one at a time."""

    def __init__(self, name: str, check: Callable[[], str | None]) -> None:
        self.name, self.check = name, check
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"health-{name}")
        self._lock = threading.Lock()
        self._running: Future | None = None
        self._started = 0.0

    def __call__(self, timeout: float) -> str | None:
        with self._lock:
            now = time.monotonic()
            if self._running is not None and not self._running.done():
                if now - self._started >= timeout:
                    return "did not answer (an earlier check is still waiting for it)"
                future = self._running  # under way and within its deadline: share its answer
                wait = timeout - (now - self._started)
            else:
                self._started = now
                self._running = future = self._executor.submit(lambda: self.check())
                wait = timeout
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            return f"did not answer within {timeout:g} s"


_PROBES = {"database": _Probe("database", lambda: check_database()), "broker": _Probe("broker", lambda: check_broker())}


def healthz(request):
    timeout = settings.CRYOLABEL_HEALTH_TIMEOUT_SECONDS
    problems = {name: error for name, probe in _PROBES.items() if (error := probe(timeout))}
    status = 200 if not problems else 503
    return JsonResponse({"status": "ok" if not problems else "unavailable", "problems": problems}, status=status)
