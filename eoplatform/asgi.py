"""ASGI entry point served by Daphne: HTTP through Django's WSGI handler in a thread pool (see
`eoplatform.http_bridge` for why), websockets under /ws/ through Channels."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eoplatform.settings")
django_wsgi_app = get_wsgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the apps loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from eoplatform.body_limits import BodyLimits  # noqa: E402
from eoplatform.http_bridge import WsgiHttpBridge  # noqa: E402
from frontend.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Each request may carry CRYOLABEL_MAX_REQUEST_MB, an admin's upload CRYOLABEL_MAX_UPLOAD_MB (+1 MB of
        # multipart envelope; checked to the byte by the upload service): anything larger, or an upload from
        # anyone else, is refused before its body is read (eoplatform.body_limits).
        "http": BodyLimits(WsgiHttpBridge(django_wsgi_app, threads=settings.CRYOLABEL_HTTP_THREADS,
                                          max_body_bytes=(settings.CRYOLABEL_MAX_UPLOAD_MB + 1) * 1024**2)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far (Django, the apps, DRF, the URL and schema tables) lives as long as the process: frozen
# out of the garbage collector's reach, so that its full collections, which stop every request thread, walk
# only what requests leave behind (~120 ms for a full collection before, in process, ~0 after).
gc.collect()
gc.freeze()
