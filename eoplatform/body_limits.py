"""Request bodies are refused before they are read unless the caller may send that much.

Only uploads need large bodies, and only admins (the `ingest` capability) upload. Every other request may carry
CRYOLABEL_MAX_REQUEST_MB at most; an upload larger than that is let through only once its credentials (the
session cookie or the API token) are known to be an admin's. So an anonymous or unprivileged client cannot make
the server spool gigabytes before its 401/403: it is answered before its body is read (issue 10 §6).

The limit travels in the ASGI scope (`cryolabel.max_body`); the HTTP bridge enforces it while the body arrives,
whether or not a Content-Length was declared (chunked bodies)."""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

SCOPE_KEY = "cryolabel.max_body"
UPLOAD_PATHS = ("/api/v1/uploads/",)


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def _declared_length(scope: dict) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def may_upload(*, session_key: str | None, token: str | None) -> bool:
    """Whether these credentials are an active user's with the `ingest` capability (database lookups)."""
    from django.contrib.auth import get_user
    from django.db import close_old_connections
    from rest_framework.authtoken.models import Token

    from accounts.roles import perm

    close_old_connections()
    user = None
    if token:
        found = Token.objects.select_related("user").filter(key=token).first()
        user = found.user if found is not None else None
    elif session_key:
        # As Django's AuthenticationMiddleware would: the session's user, checked against its password hash.
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user = get_user(SimpleNamespace(session=store))
    return bool(user is not None and user.is_active and user.has_perm(perm("ingest")))


def _credentials(scope: dict) -> tuple[str | None, str | None]:
    token = None
    authorization = _header(scope, b"authorization")
    if authorization:
        parts = authorization.decode("latin-1").split()
        if len(parts) == 2 and parts[0].lower() == "token":
            token = parts[1]
    session_key = None
    cookie = _header(scope, b"cookie")
    if cookie:
        try:
            jar = SimpleCookie(cookie.decode("latin-1"))
        except CookieError:
            jar = SimpleCookie()
        if settings.SESSION_COOKIE_NAME in jar:
            session_key = jar[settings.SESSION_COOKIE_NAME].value
    return session_key, token


class BodyLimits:
    """ASGI middleware in front of the HTTP application."""

    def __init__(self, app, *, small_bytes: int | None = None, upload_bytes: int | None = None) -> None:
        self.app = app
        self.small_bytes = small_bytes if small_bytes is not None else settings.CRYOLABEL_MAX_REQUEST_MB * 1024**2
        self.upload_bytes = (upload_bytes if upload_bytes is not None
                             else (settings.CRYOLABEL_MAX_UPLOAD_MB + 1) * 1024**2)  # + the multipart envelope
        self._may_upload = database_sync_to_async(may_upload)

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.small_bytes
        declared = _declared_length(scope)
        has_body = declared is None and _header(scope, b"transfer-encoding") is not None or (declared or 0) > 0
        if has_body and scope["path"] in UPLOAD_PATHS and (declared is None or declared > self.small_bytes):
            session_key, token = _credentials(scope)
            if not (session_key or token):
                return await _refuse(send, 401, "log in as an admin to upload; nothing was read")
            if not await self._may_upload(session_key=session_key, token=token):
                return await _refuse(send, 403, "only admins may upload files; nothing was read")
            limit = self.upload_bytes
        if declared is not None and declared > limit:
            return await _refuse(send, 413, _too_large(declared, limit))
        await self.app({**scope, SCOPE_KEY: limit}, receive, send)


def _too_large(size: int, limit: int) -> str:
    return (f"the request body ({size / 1024**2:.1f} MB) is over the {limit / 1024**2:.0f} MB this request may "
            "carry; nothing was stored")


async def _refuse(send, status: int, detail: str) -> None:
    content = json.dumps({"detail": detail}).encode()
    headers: list[tuple[bytes, Any]] = [(b"content-type", b"application/json"), (b"connection", b"close"),
                                        (b"content-length", str(len(content)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Token"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
