"""eoplatform.body_limits: a body is refused before it is read unless the caller may send that much
(issue 10 §6): only an admin's upload may be large; anonymous and unprivileged clients are answered unread."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.roles import Role
from eoplatform.body_limits import SCOPE_KEY, BodyLimits

pytestmark = pytest.mark.django_db(transaction=True)  # credentials are looked up in another thread


def _scope(path, headers):
    return {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}


def _run(scope):
    reads, sent, seen = [], [], []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 10, "more_body": False}

    async def send(message):
        sent.append(message)

    async def inner(scope, receive, send):
        seen.append(scope[SCOPE_KEY])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def go():
        await BodyLimits(inner, small_bytes=1000, upload_bytes=100_000)(scope, receive, send)

    with ThreadPoolExecutor(1) as pool:  # a loop of its own (Playwright may hold one on this thread)
        pool.submit(asyncio.run, go()).result()
    return sent[0]["status"], reads, seen


def test_only_an_admin_may_send_a_large_upload_and_others_are_answered_unread(make_user, client):
    from accounts.services import token_for

    big = [(b"content-length", b"50000")]
    chunked = [(b"transfer-encoding", b"chunked")]
    upload = "/api/v1/uploads/"
    status, reads, _ = _run(_scope(upload, chunked))
    assert (status, reads) == (401, [])
    annotator = token_for(user=make_user(Role.ANNOTATOR, "ann")).encode()
    status, reads, _ = _run(_scope(upload, [*big, (b"authorization", b"Token " + annotator)]))
    assert (status, reads) == (403, [])
    status, reads, _ = _run(_scope(upload, [*big, (b"authorization", b"Token not-a-token")]))
    assert (status, reads) == (403, [])

    admin = make_user(Role.ADMIN, "adm")
    status, _, seen = _run(_scope(upload, [*big, (b"authorization", b"Token " + token_for(user=admin).encode())]))
    assert (status, seen) == (204, [100_000])
    client.force_login(admin)  # a browser session: the cookie is checked as Django's middleware would
    cookie = f"sessionid={client.cookies['sessionid'].value}; other=1".encode()
    status, _, seen = _run(_scope(upload, [*chunked, (b"cookie", cookie)]))
    assert (status, seen) == (204, [100_000])
    # Too large for any upload, even an admin's.
    status, reads, _ = _run(_scope(upload, [(b"content-length", b"200000"), (b"cookie", cookie)]))
    assert (status, reads) == (413, [])


def test_every_other_request_gets_the_small_limit():
    status, reads, _ = _run(_scope("/api/v1/votes/", [(b"content-length", b"5000")]))
    assert (status, reads) == (413, [])
    status, _, seen = _run(_scope("/api/v1/votes/", [(b"content-length", b"500")]))
    assert (status, seen) == (204, [1000])
    status, _, seen = _run(_scope("/api/v1/uploads/", [(b"content-length", b"500")]))  # small: the view says
    assert (status, seen) == (204, [1000])
