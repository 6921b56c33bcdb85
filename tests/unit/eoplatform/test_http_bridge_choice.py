"""CRYOLABEL_HTTP_BRIDGE: the HTTP side of eoplatform.asgi is the builtin bridge unless told otherwise; a2wsgi's
WSGIMiddleware is there for the comparison bench (bench/bench_crowd_queue.py --bridge both), and only where the
package is installed (it is not a requirement of the platform)."""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ImproperlyConfigured


def _run(coroutine):
    """asyncio.run in a thread of its own: some earlier tests (Playwright) leave a loop set on the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _scope(path: str, headers) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": list(headers), "client": ("10.1.2.3", 5555), "server": ("127.0.0.1", 8000)}


async def _call(app, scope) -> list[dict]:
    sent: list[dict] = []
    delivered = False

    async def receive():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays until the answer is complete

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


def _wsgi_ok(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_the_default_is_the_builtin_bridge(settings):
    from eoplatform.asgi import application, http_bridge
    from eoplatform.http_bridge import WsgiHttpBridge

    assert settings.CRYOLABEL_HTTP_BRIDGE == "builtin"
    assert isinstance(application.application_mapping["http"].app, WsgiHttpBridge)  # BodyLimits(bridge)
    bridge = http_bridge("builtin", _wsgi_ok, threads=2, max_body_bytes=1024)
    assert isinstance(bridge, WsgiHttpBridge) and bridge.max_body_bytes == 1024


def test_an_unknown_bridge_is_refused():
    from eoplatform.asgi import http_bridge

    with pytest.raises(ImproperlyConfigured, match="CRYOLABEL_HTTP_BRIDGE is 'gunicorn'"):
        http_bridge("gunicorn", _wsgi_ok, threads=2, max_body_bytes=1024)


def test_a2wsgi_without_the_package_says_what_is_missing(monkeypatch):
    from eoplatform.asgi import http_bridge

    monkeypatch.setitem(sys.modules, "a2wsgi", None)  # import a2wsgi raises ImportError
    with pytest.raises(ImproperlyConfigured, match="pip install a2wsgi"):
        http_bridge("a2wsgi", _wsgi_ok, threads=2, max_body_bytes=1024)


@pytest.mark.django_db(transaction=True)  # the request runs in a pool thread, on its own connection
def test_a2wsgi_serves_the_platform_behind_the_body_limits(annotator):
    """The platform's WSGI application through a2wsgi, wrapped by BodyLimits as eoplatform.asgi wraps it."""
    a2wsgi = pytest.importorskip("a2wsgi")
    from accounts.services import token_for
    from eoplatform.asgi import django_wsgi_app, http_bridge
    from eoplatform.body_limits import BodyLimits

    app = BodyLimits(http_bridge("a2wsgi", django_wsgi_app, threads=2, max_body_bytes=1024**2),
                     small_bytes=1024, upload_bytes=2048)
    assert isinstance(app.app, a2wsgi.WSGIMiddleware)
    token = token_for(user=annotator).encode()
    headers = [(b"host", b"127.0.0.1"), (b"authorization", b"Token " + token), (b"accept", b"application/json")]
    sent = _run(_call(app, _scope("/api/v1/me/", headers)))
    assert sent[0]["status"] == 200
    assert b'"role":"annotator"' in b"".join(m.get("body", b"") for m in sent[1:])
    # A declared body over the limit is answered by BodyLimits before any bridge sees it.
    refused = _run(_call(app, _scope("/api/v1/me/", [*headers, (b"content-length", b"4096")])))
    assert refused[0]["status"] == 413
