"""A minimal Django project (Debian's python3-django 3.2 and
python3-django-channels 4.0) served by hornbeam's ASGI mode: async and sync
views, and Channels consumers with the in-memory channel layer.
asgi/frameworks_test.go drives it.

    hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples django_async.asgi:application

HTTP (views.py): /async/<int:n>?q=, /sync/<word>, POST /json, POST /upload,
/notify/<room>?text= (group_send to the room's sockets), /boom (raises).
WebSocket (consumers.py): /ws/echo/ (sync WebsocketConsumer; takes the
subprotocol chat.v2; "close" closes with 4005), /ws/chat/<room>/
(AsyncWebsocketConsumer: each message goes to the whole room through the
channel layer), /ws/deny/ (closes before accepting: 403); any other path
has no route (Channels raises: 403 and the error logged).

Django 3.2 and Channels' ProtocolTypeRouter have no lifespan: hornbeam
(--lifespan auto) logs that and serves.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_async.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()  # sets Django up before the consumers import models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from . import consumers  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_app,
    "websocket": URLRouter([
        path("ws/echo/", consumers.EchoConsumer.as_asgi()),
        path("ws/chat/<str:room>/", consumers.ChatConsumer.as_asgi()),
        path("ws/deny/", consumers.DenyConsumer.as_asgi()),
    ]),
})
