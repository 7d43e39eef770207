"""A plain Starlette app (Debian's python3-starlette 0.26) served by
hornbeam's ASGI mode: a lifespan context manager with state, a
StreamingResponse, a WebSocketEndpoint and a room that pushes to its
sockets. asgi/frameworks_test.go drives it.

    hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples asgi_starlette:app

HTTP: GET /hello/{name} (path parameter, request.state from the lifespan),
POST /echo (the JSON body back), GET /stream?n=N (N lines, one every 50 ms),
GET /forever (lines until the client leaves; /events says whether the
generator was stopped), GET /longpoll (polls request.is_disconnected()
until the client leaves), GET /boom (raises), GET /events.
WebSocket: /ws/echo (a WebSocketEndpoint: text back in upper case),
/ws/room (each text message is pushed to every other socket in the room).

Environment: STARLETTE_SHUTDOWN_FILE is written when the lifespan ends.
Starlette 0.26 predates ASGI spec 2.4's root_path in path: serve it
without a root_path.
"""

import asyncio
import contextlib
import os

from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute

EVENTS = {"forever_started": 0, "forever_stopped": 0, "longpoll_waiting": 0, "longpoll_left": 0, "room_joined": 0}
ROOM = set()


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from the lifespan", "pid": os.getpid()}
    path = os.environ.get("STARLETTE_SHUTDOWN_FILE")
    if path:
        with open(path, "w") as f:
            f.write("starlette lifespan ended")


async def hello(request):
    return JSONResponse({"name": request.path_params["name"], "greeting": request.state.greeting,
                         "upper": request.query_params.get("upper") == "1"})


async def echo(request):
    data = await request.json()
    return JSONResponse({"got": data, "length": len(await request.body())})


async def stream(request):
    n = int(request.query_params.get("n", "5"))

    async def gen():
        for i in range(n):
            yield "line %d\n" % i
            await asyncio.sleep(0.05)

    return StreamingResponse(gen(), media_type="text/plain")


async def forever(request):
    async def gen():
        EVENTS["forever_started"] += 1
        try:
            i = 0
            while True:
                yield "tick %d\n" % i
                i += 1
                await asyncio.sleep(0.02)
        finally:
            EVENTS["forever_stopped"] += 1

    return StreamingResponse(gen(), media_type="text/plain")


async def longpoll(request):
    # request.is_disconnected() polls receive() without waiting: it must
    # turn True once the client has gone.
    EVENTS["longpoll_waiting"] += 1
    for _ in range(500):
        if await request.is_disconnected():
            EVENTS["longpoll_left"] += 1
            return PlainTextResponse("nobody reads this")
        await asyncio.sleep(0.02)
    return PlainTextResponse("the client never left")


async def boom(request):
    raise ValueError("starlette boom for the test")


async def events(request):
    return JSONResponse(EVENTS)


async def ready(request):
    return PlainTextResponse("ok")


class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, ws, data):
        await ws.send_text(data.upper())


async def room(ws):
    await ws.accept()
    ROOM.add(ws)
    EVENTS["room_joined"] += 1
    try:
        async for text in ws.iter_text():
            for other in list(ROOM):
                if other is not ws:
                    await other.send_text(text)
    finally:
        ROOM.discard(ws)


app = Starlette(
    routes=[
        Route("/__ready__", ready),
        Route("/hello/{name}", hello),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/forever", forever),
        Route("/longpoll", longpoll),
        Route("/boom", boom),
        Route("/events", events),
        WebSocketRoute("/ws/echo", Echo),
        WebSocketRoute("/ws/room", room),
    ],
    lifespan=lifespan,
)
