"""The views: async ones run on hornbeam's event loop, sync ones in
asgiref's thread (Django wraps them in sync_to_async)."""

import asyncio
import hashlib
import json
import threading

from channels.layers import get_channel_layer
from django.http import HttpResponse, JsonResponse


def _in_loop():
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


async def ready(request):
    return HttpResponse("ok")


async def async_view(request, n):
    await asyncio.sleep(0.01)
    return JsonResponse({"n": n, "double": n * 2, "q": request.GET.get("q"), "in_loop": _in_loop(),
                         "thread": threading.current_thread().name})


def sync_view(request, word):
    return JsonResponse({"word": word, "upper": word.upper(), "in_loop": _in_loop(),
                         "thread": threading.current_thread().name})


async def json_view(request):
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    data = json.loads(request.body)
    return JsonResponse({"got": data, "content_type": request.content_type}, status=201)


async def upload(request):
    body = request.body
    return JsonResponse({"length": len(body), "sha256": hashlib.sha256(body).hexdigest()})


async def notify(request, room):
    # A push to every socket of the room through the channel layer, from
    # an HTTP request: the sockets' clients say nothing.
    await get_channel_layer().group_send("room_" + room, {"type": "chat.message", "text": "notice: " + request.GET.get("text", "")})
    return JsonResponse({"sent": room})


def boom(request):
    raise ZeroDivisionError("django boom for the test")
