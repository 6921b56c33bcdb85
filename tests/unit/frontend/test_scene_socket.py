"""/ws/scenes/<id>/ (frontend/consumers.py ScenePolygonsConsumer) through the platform's own ASGI application
(origin check, session authentication, routing): refusals closed with the codes the page tells apart, then every
polygon created, edited or deleted on the scene by someone else, each version once."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from shapely.geometry import shape

from accounts.roles import Role
from annotations.models import Scene
from annotations.services.ingest import ingest_paths
from annotations.services.scene_polygons import polygon_create, polygon_delete, polygon_edit
from demo.synthetic import write_demo_scenes
from eoplatform.asgi import application
from tests.conftest import run_async

pytestmark = pytest.mark.django_db(transaction=True)  # the consumer reads the rows from threads of its own
WAIT = 10  # seconds: generous, each message is due within a poll (0.05 s)


@pytest.fixture(autouse=True)
def fast_polls(settings):
    settings.JOBS_POLL_SECONDS = 0.05


@pytest.fixture(scope="module")
def product(tmp_path_factory) -> Path:
    return write_demo_scenes(tmp_path_factory.mktemp("ew-socket"), 1, seed=5, size=300)[0]


@pytest.fixture
def scene(settings, tmp_path, product) -> Scene:
    settings.MEDIA_ROOT = tmp_path / "media"
    assert not ingest_paths([product]).errors
    return Scene.objects.get()


def _headers(user=None) -> list[tuple[bytes, bytes]]:
    """What a browser on the platform's own page sends: its Origin, and its session cookie when logged in."""
    headers = [(b"origin", b"http://testserver")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


def _square(scene: Scene, size: float = 0.2) -> dict:
    c = shape(scene.footprint).centroid
    return {"type": "Polygon", "coordinates": [[[c.x - size, c.y - size / 3], [c.x + size, c.y - size / 3],
                                                 [c.x + size, c.y + size / 3], [c.x - size, c.y + size / 3],
                                                 [c.x - size, c.y - size / 3]]]}


async def _open(scene_id: int, headers) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, f"/ws/scenes/{scene_id}/", headers=headers)
    connected, _ = await socket.connect(timeout=WAIT)
    assert connected  # accepted first, then closed with a code (a page tells "refused" from "server down")
    return socket


async def _close_code(scene_id: int, headers) -> int:
    socket = await _open(scene_id, headers)
    try:
        closed = await socket.receive_output(timeout=WAIT)
    finally:
        await socket.disconnect()
        await sync_to_async(connections.close_all)()
    assert closed["type"] == "websocket.close", closed
    return closed["code"]


def test_an_anonymous_socket_is_closed_4401(scene) -> None:
    assert run_async(_close_code(scene.pk, _headers())) == 4401


def test_a_user_without_the_label_capability_is_closed_4403(scene) -> None:
    nobody = User.objects.create_user(username="no-role", password="pw-for-tests-1")  # no role, no group
    assert run_async(_close_code(scene.pk, _headers(nobody))) == 4403


def test_a_scene_that_does_not_exist_is_closed_4404(make_user) -> None:
    annotator = make_user(Role.ANNOTATOR, "sock-404")
    assert not Scene.objects.filter(pk=987654).exists()
    assert run_async(_close_code(987654, _headers(annotator))) == 4404


def test_each_change_of_a_polygon_reaches_the_socket_once(scene, make_user) -> None:
    watcher, drawer = make_user(Role.ANNOTATOR, "sock-watcher"), make_user(Role.EXPERT, "sock-drawer")
    headers = _headers(watcher)

    async def follow() -> list[dict]:
        socket = await _open(scene.pk, headers)
        try:
            assert await socket.receive_json_from(timeout=WAIT) == {"type": "ready", "scene": scene.pk}
            seen = []
            polygon = await sync_to_async(polygon_create)(scene=scene, geometry=_square(scene), label="ice", sic=85,
                                                          stage="thin first-year ice", author=drawer)
            seen.append(await socket.receive_json_from(timeout=WAIT))
            await sync_to_async(polygon_edit)(polygon_id=polygon.pk, expected_version=1, sic=40, author=drawer)
            seen.append(await socket.receive_json_from(timeout=WAIT))  # version 1 again here would fail the test
            await sync_to_async(polygon_delete)(polygon_id=polygon.pk, expected_version=2, author=drawer)
            seen.append(await socket.receive_json_from(timeout=WAIT))
            # Later polls look back over the same rows (OVERLAP): nothing already sent goes out again.
            assert await socket.receive_nothing(timeout=0.5, interval=0.05)
            return seen
        finally:
            await socket.disconnect()
            await sync_to_async(connections.close_all)()

    created, edited, deleted = run_async(follow())
    polygon_id = created["feature"]["id"]
    for message in (created, edited, deleted):
        assert message["type"] == "polygon" and message["feature"]["id"] == polygon_id
        assert message["feature"]["type"] == "Feature" and message["feature"]["geometry"]["type"] == "Polygon"
    props = created["feature"]["properties"]
    assert (props["label"], props["sic"], props["stage"], props["version"], props["source"], props["author"]) == \
        ("ice", 85.0, "thin first-year ice", 1, "person", "sock-drawer")
    assert created["deleted"] is False
    assert (edited["feature"]["properties"]["version"], edited["feature"]["properties"]["sic"]) == (2, 40.0)
    assert edited["deleted"] is False
    assert deleted["feature"]["properties"]["version"] == 3 and deleted["deleted"] is True


def test_polygons_of_another_scene_do_not_reach_the_socket(scene, make_user) -> None:
    """A socket follows its own scene only: a change elsewhere is neither sent nor mistaken for one of its own."""
    watcher, drawer = make_user(Role.ANNOTATOR, "sock-other-w"), make_user(Role.EXPERT, "sock-other-d")
    fields = {f.name: getattr(scene, f.name) for f in Scene._meta.concrete_fields
              if f.name not in ("id", "ingest_job", "created_at")}
    other = Scene.objects.create(**{**fields, "key": f"{scene.key}-copy"})  # the same place, another scene
    headers = _headers(watcher)

    async def follow() -> dict:
        socket = await _open(scene.pk, headers)
        try:
            await socket.receive_json_from(timeout=WAIT)  # ready
            await sync_to_async(polygon_create)(scene=other, geometry=_square(other), label="water", author=drawer)
            mine = await sync_to_async(polygon_create)(scene=scene, geometry=_square(scene), label="water",
                                                       author=drawer)
            message = await socket.receive_json_from(timeout=WAIT)
            assert message["feature"]["id"] == mine.pk
            assert await socket.receive_nothing(timeout=0.5, interval=0.05)
            return message
        finally:
            await socket.disconnect()
            await sync_to_async(connections.close_all)()

    message = run_async(follow())
    assert message["feature"]["properties"]["label"] == "water" and message["feature"]["properties"]["sic"] is None
