"""HTTP under the ASGI server (Daphne) through Django's WSGI handler: one worker-thread hop per request.

Why: every view of the platform is synchronous (the ORM), and Django's ASGI handler runs a sync view
behind a chain of hops between the event loop and a new per-request thread: one for each sync part of
each middleware, one for the view. On the crowd-queue bench database a GET /api/v1/me/ took 7.4 ms
through Django's ASGI handler and 4.1 ms through its WSGI handler, in process; under 50 annotators the
difference is the platform's throughput. So the HTTP side runs the WSGI handler in a bounded thread
pool, as a WSGI server would, while websockets stay with the Channels consumers on the event loop.

What the bridge keeps of a server's duties:
  - the request body is spooled (memory, then disk) and CONTENT_LENGTH set from what arrived, so a
    chunked upload reaches Django whole; a body over `max_body_bytes` is refused with 413 as soon as its
    Content-Length (or what has arrived) says so, before it fills the disk and before Django sees it;
  - a plain response is built and closed in the worker thread (closing fires `request_finished`, which
    hands the database connection back to the pool) and sent from the loop in one piece;
  - a streaming response (a zip download, a file) is sent chunk by chunk from the worker thread, which
    waits for each send: memory holds one chunk; a client that goes away stops the iteration.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Send = Callable[[Message], Any]

SPOOL_IN_MEMORY = 1 << 20  # request bodies above 1 MiB go to a temporary file while Django reads them


class ClientGone(Exception):
    """The client disconnected while a streaming response was being sent."""


class WsgiHttpBridge:
    """An ASGI application for `http` scopes that runs a WSGI application in a thread pool."""

    def __init__(self, wsgi_application, *, threads: int, max_body_bytes: int | None = None) -> None:
        if threads < 1:
            raise ValueError("the HTTP bridge needs at least one thread")
        self.wsgi_application = wsgi_application
        self.max_body_bytes = max_body_bytes
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"the HTTP bridge got a {scope['type']!r} scope")
        declared = _declared_length(scope)
        # The limit of this request (eoplatform.body_limits puts it in the scope), else the bridge's own.
        max_body = scope.get("cryolabel.max_body", self.max_body_bytes)
        if max_body is not None and declared is not None and declared > max_body:
            await self._too_large(send, declared, max_body)
            return
        with SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # gone before the request was complete: nothing to answer
                body.write(message.get("body", b""))
                if max_body is not None and body.tell() > max_body:
                    await self._too_large(send, body.tell(), max_body)
                    return
                if not message.get("more_body"):
                    break
            length = body.tell()
            body.seek(0)
            gone = threading.Event()
            watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
            loop = asyncio.get_running_loop()
            try:
                answer = await loop.run_in_executor(self.executor, self._run, scope, body, length, send, loop, gone)
            finally:
                watcher.cancel()
            if answer is not None:  # a plain response, built in the thread: send it from here
                start, content = answer
                await send(start)
                await send({"type": "http.response.body", "body": content})

    async def _too_large(self, send, size: int, limit: int) -> None:
        detail = (f"the request body ({size / 1024**2:.0f} MB) is over the {limit / 1024**2:.0f} MB limit of this "
                  "request (CRYOLABEL_MAX_REQUEST_MB; uploads: CRYOLABEL_MAX_UPLOAD_MB); nothing was stored")
        content = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    # --- in the worker thread ------------------------------------------------------------------------------
    def _run(self, scope: Scope, body, length: int, send: Send, loop, gone: threading.Event):
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            if exc_info is not None and started.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            started["message"] = {
                "type": "http.response.start",
                "status": int(status.split(" ", 1)[0]),
                "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            }

        response = self.wsgi_application(build_environ(scope, body, length), start_response)
        try:
            if not getattr(response, "streaming", False):
                content = b"".join(response)
                return started["message"], content

            def threadsafe_send(message: Message) -> None:
                if gone.is_set():
                    raise ClientGone
                asyncio.run_coroutine_threadsafe(send(message), loop).result()

            started["sent"] = True
            threadsafe_send(started["message"])
            for chunk in response:
                if chunk:
                    threadsafe_send({"type": "http.response.body", "body": chunk, "more_body": True})
            threadsafe_send({"type": "http.response.body"})
            return None
        except ClientGone:
            return None
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()  # Django's request_finished: the database connection goes back to the pool


async def _watch_disconnect(receive, gone: threading.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def build_environ(scope: Scope, body, length: int) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) for an ASGI http scope."""
    script_name = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    path_info = scope["path"].encode("utf-8").decode("latin-1")
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name):]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "CONTENT_LENGTH": str(length),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"] = scope["client"][0]
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_LENGTH":
            continue  # what arrived counts (a chunked body has no header)
        key = "CONTENT_TYPE" if name == "CONTENT_TYPE" else f"HTTP_{name}"
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            environ[key] = value
    return environ
