"""ASGI entry point served by Daphne: HTTP through Django's WSGI handler in a thread pool (see
`eoplatform.http_bridge` for why; CRYOLABEL_HTTP_BRIDGE chooses the bridge), websockets under /ws/ through
Channels."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eoplatform.settings")
django_wsgi_app = get_wsgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the apps loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from eoplatform.body_limits import BodyLimits  # noqa: E402
from eoplatform.http_bridge import WsgiHttpBridge  # noqa: E402
from frontend.routing import websocket_urlpatterns  # noqa: E402

HTTP_BRIDGES = ("builtin", "a2wsgi")


def http_bridge(kind: str, wsgi_app, *, threads: int, max_body_bytes: int):
    """The ASGI application that runs `wsgi_app` on `threads` threads (CRYOLABEL_HTTP_BRIDGE):
    "builtin": eoplatform.http_bridge.WsgiHttpBridge, the default;
    "a2wsgi": a2wsgi.WSGIMiddleware, for comparison only (bench/bench_crowd_queue.py --bridge both; 2026-12-03 it
    served 0.55-0.58x the requests/s of the builtin bridge). It also does less (bench/README.md): a chunked request
    body (no Content-Length) reaches Django empty; the per-request limit holds only for a declared Content-Length
    (BodyLimits); a streaming response runs on after the client left, and if Daphne then cancels the request its
    thread blocks for ever, the response unclosed."""
    if kind == "builtin":
        return WsgiHttpBridge(wsgi_app, threads=threads, max_body_bytes=max_body_bytes)
    if kind == "a2wsgi":
        try:
            from a2wsgi import WSGIMiddleware
        except ImportError as exc:
            raise ImproperlyConfigured("CRYOLABEL_HTTP_BRIDGE=a2wsgi needs the a2wsgi package "
                                       "(pip install a2wsgi); the default, builtin, does not") from exc
        return WSGIMiddleware(wsgi_app, workers=threads)
    raise ImproperlyConfigured(f"CRYOLABEL_HTTP_BRIDGE is {kind!r}; expected one of {', '.join(HTTP_BRIDGES)}")


application = ProtocolTypeRouter(
    {
        # Each request may carry CRYOLABEL_MAX_REQUEST_MB, an admin's upload CRYOLABEL_MAX_UPLOAD_MB (+1 MB of
        # multipart envelope; checked to the byte by the upload service): anything larger, or an upload from
        # anyone else, is refused before its body is read (eoplatform.body_limits).
        "http": BodyLimits(http_bridge(settings.CRYOLABEL_HTTP_BRIDGE, django_wsgi_app,
                                       threads=settings.CRYOLABEL_HTTP_THREADS,
                                       max_body_bytes=(settings.CRYOLABEL_MAX_UPLOAD_MB + 1) * 1024**2)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far (Django, the apps, DRF, the URL and schema tables) lives as long as the process: frozen
# out of the garbage collector's reach, so that its full collections, which stop every request thread, walk
# only what requests leave behind (~120 ms for a full collection before, in process, ~0 after).
gc.collect()
gc.freeze()
