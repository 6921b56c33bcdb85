"""The ASGI -> WSGI bridge Daphne serves HTTP through (eoplatform.http_bridge), driven as Daphne drives it:
ASGI messages in, ASGI messages out. Real Django requests go through it in the end-to-end tests."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from eoplatform.http_bridge import WsgiHttpBridge, build_environ


def _run(coroutine):
    """asyncio.run in a thread of its own: some earlier tests (Playwright) leave a loop set on the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _scope(path="/x", method="GET", query=b"", headers=()):
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
            "headers": list(headers), "client": ("10.1.2.3", 5555), "server": ("127.0.0.1", 8000)}


async def _call(app, scope, body_parts=(b"",), disconnect_after: int | None = None):
    """Run one request; returns the messages sent. `disconnect_after`: the client leaves after that many
    body messages have been sent to it."""
    incoming = [{"type": "http.request", "body": part, "more_body": i < len(body_parts) - 1}
                for i, part in enumerate(body_parts)]
    sent: list[dict] = []
    gone = asyncio.Event()

    async def receive():
        if incoming:
            return incoming.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if disconnect_after is not None and sum(m["type"] == "http.response.body" for m in sent) >= disconnect_after:
            gone.set()
        await asyncio.sleep(0)

    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


def _wsgi_echo(environ, start_response):
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"] or 0))
    fields = {k: environ.get(k) for k in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
                                           "CONTENT_LENGTH", "REMOTE_ADDR", "HTTP_COOKIE", "HTTP_X_TWICE")}
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Thread", threading.current_thread().name)])
    return [repr(fields).encode(), b"|", body]


def test_a_request_goes_through_with_its_body_headers_and_status():
    app = WsgiHttpBridge(_wsgi_echo, threads=2)
    headers = [(b"content-type", b"application/json"), (b"cookie", b"a=1"), (b"cookie", b"b=2"),
               (b"x-twice", b"one"), (b"x-twice", b"two")]
    # A chunked upload: no content-length header, the body arrives in three messages.
    sent = _run(_call(app, _scope("/api/v1/caf\u00e9/", "POST", b"q=1&r=%C3%A9", headers),
                             body_parts=(b'{"a"', b": 1", b"}")))
    start, body = sent
    assert start["status"] == 201
    assert dict(start["headers"])[b"x-thread"].startswith(b"http")  # ran on the bridge's pool
    fields_repr, _, echoed = body["body"].partition(b"|")
    fields = eval(fields_repr.decode())  # noqa: S307 (our own repr of a dict of strings)
    assert echoed == b'{"a": 1}' and fields["CONTENT_LENGTH"] == "8"
    assert fields["REQUEST_METHOD"] == "POST" and fields["QUERY_STRING"] == "q=1&r=%C3%A9"
    assert fields["PATH_INFO"].encode("latin-1").decode("utf-8") == "/api/v1/caf\u00e9/"  # PEP 3333 latin-1
    assert fields["CONTENT_TYPE"] == "application/json" and fields["REMOTE_ADDR"] == "10.1.2.3"
    assert fields["HTTP_COOKIE"] == "a=1; b=2" and fields["HTTP_X_TWICE"] == "one,two"
    assert body.get("more_body", False) is False


class _Streamed:
    """A streaming WSGI response that records how far it was read and whether it was closed."""

    streaming = True

    def __init__(self, chunks: int) -> None:
        self.chunks, self.produced, self.closed = chunks, 0, False

    def __iter__(self):
        for i in range(self.chunks):
            self.produced += 1
            yield f"chunk{i};".encode()

    def close(self):
        self.closed = True


def test_a_streaming_response_is_sent_chunk_by_chunk_and_closed():
    response = _Streamed(5)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/zip")])
        return response

    sent = _run(_call(WsgiHttpBridge(app, threads=1), _scope()))
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in bodies) == b"chunk0;chunk1;chunk2;chunk3;chunk4;"
    assert len(bodies) == 6 and bodies[-1].get("more_body", False) is False  # 5 chunks, then the end
    assert response.closed


def test_a_client_that_leaves_stops_a_streaming_response():
    response = _Streamed(10_000)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/zip")])
        return response

    _run(_call(WsgiHttpBridge(app, threads=1), _scope(), disconnect_after=3))
    assert response.closed and response.produced < 100  # not read to the end for nobody


def test_a_plain_response_is_closed_in_the_worker_thread():
    closed_in: list[str] = []

    class Plain(list):
        def close(self):
            closed_in.append(threading.current_thread().name)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Plain([b"hello ", b"world"])

    sent = _run(_call(WsgiHttpBridge(app, threads=1), _scope()))
    assert sent[1]["body"] == b"hello world"
    assert closed_in and closed_in[0].startswith("http")  # Django's request_finished runs where the request ran


def test_requests_run_concurrently_on_the_pool():
    """Two requests that each wait for the other can only finish if they run at the same time."""
    barrier = threading.Barrier(2, timeout=5)

    def app(environ, start_response):
        barrier.wait()
        start_response("200 OK", [])
        return [b"ok"]

    bridge = WsgiHttpBridge(app, threads=2)

    async def both():
        return await asyncio.gather(_call(bridge, _scope()), _call(bridge, _scope()))

    assert [sent[0]["status"] for sent in _run(both())] == [200, 200]


def test_a_client_gone_before_the_body_arrived_gets_nothing_and_runs_nothing():
    ran = []

    def app(environ, start_response):
        ran.append(1)
        start_response("200 OK", [])
        return [b""]

    async def go():
        messages = [{"type": "http.request", "body": b"part", "more_body": True}, {"type": "http.disconnect"}]
        sent = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        await WsgiHttpBridge(app, threads=1)(_scope(method="POST"), receive, send)
        return sent

    assert _run(go()) == [] and ran == []


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    ran = []

    def app(environ, start_response):
        ran.append(1)
        start_response("200 OK", [])
        return [b""]

    bridge = WsgiHttpBridge(app, threads=1, max_body_bytes=1000)
    declared = _run(_call(bridge, _scope(method="POST", headers=[(b"content-length", b"5000")]),
                          body_parts=(b"x" * 5000,)))
    assert declared[0]["status"] == 413 and b"over the 0 MB limit" in declared[1]["body"]
    # Chunked (no Content-Length): refused once what has arrived passes the limit.
    chunked = _run(_call(bridge, _scope(method="POST"), body_parts=(b"x" * 600, b"x" * 600, b"x" * 600)))
    assert chunked[0]["status"] == 413 and ran == []
    within = _run(_call(bridge, _scope(method="POST", headers=[(b"content-length", b"900")]),
                        body_parts=(b"x" * 900,)))
    assert within[0]["status"] == 200 and ran == [1]


def test_only_http_scopes_and_a_positive_pool():
    with pytest.raises(ValueError, match="at least one thread"):
        WsgiHttpBridge(_wsgi_echo, threads=0)
    with pytest.raises(ValueError, match="websocket"):
        _run(WsgiHttpBridge(_wsgi_echo, threads=1)({"type": "websocket"}, None, None))


def test_the_environ_strips_the_root_path_and_defaults_the_server():
    scope = {**_scope("/prefix/api/"), "root_path": "/prefix", "server": None}
    environ = build_environ(scope, None, 0)
    assert environ["SCRIPT_NAME"] == "/prefix" and environ["PATH_INFO"] == "/api/"
    assert environ["SERVER_NAME"] == "localhost" and environ["SERVER_PORT"] == "80"


@pytest.mark.django_db(transaction=True)  # the request runs in another thread, on its own connection
def test_django_answers_through_the_bridge_as_the_platform_is_served(annotator):
    """The platform's own application (eoplatform.asgi): an API call with a token, and a 404."""
    from accounts.services import token_for
    from eoplatform.asgi import application

    token = token_for(user=annotator).encode()
    headers = [(b"host", b"127.0.0.1"), (b"authorization", b"Token " + token), (b"accept", b"application/json")]
    sent = _run(_call(application, _scope("/api/v1/me/", headers=headers)))
    assert sent[0]["status"] == 200 and b'"role":"annotator"' in sent[1]["body"]
    missing = _run(_call(application, _scope("/api/v1/no-such-thing/", headers=headers)))
    assert missing[0]["status"] == 404
