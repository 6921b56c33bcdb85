"""Liveness of the parts the platform cannot work without: the database and the broker."""

from __future__ import annotations

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


def healthz(request):
    problems = {name: error for name, error in (("database", check_database()), ("broker", check_broker())) if error}
    status = 200 if not problems else 503
    return JsonResponse({"status": "ok" if not problems else "unavailable", "problems": problems}, status=status)
