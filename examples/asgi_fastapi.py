"""A FastAPI app (Debian's python3-fastapi 0.92, Starlette 0.26) served by
hornbeam's ASGI mode; asgi/frameworks_test.go drives it.

    hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples asgi_fastapi:app

HTTP: GET /items/{item_id}?q=&limit= (path and query parameters, typed),
POST /items (a JSON body validated by pydantic; 422 otherwise),
POST /upload (the body read as it streams: length, sha256, chunks),
POST /form (multipart: a field and a file), GET /headers (the repeated
request header x-tag; sets two cookies),
GET /stream (a StreamingResponse: its first chunk, then it waits for
GET /release before the rest), GET /slow?s= (sleeps; /events says
whether it was cancelled, as --timeout does), GET /sync-sleep?s= (a sync
def, run in a thread), GET /big?mb=N (N MiB streamed; /state says how
much send() took so far), GET /boom (raises), GET /state (what the
startup handler stored), GET /events (what the WebSockets saw).
WebSocket: /ws/echo (takes the first subprotocol offered, sends the
header x-echo; text and bytes back, "sleep" answers after 1.5 s; "close"
closes with 4001 "bye"), /ws/push?n=N (N messages without reading; then waits for the
client's close and records its code in /events).

Environment: FASTAPI_SHUTDOWN_FILE is written by the shutdown handler.
"""

import asyncio
import hashlib
import os
import threading
import time
from typing import List, Optional

from fastapi import FastAPI, File, Form, Request, Response, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()

STATE = {"startup": 0}
EVENTS = []
RELEASE = {}


@app.on_event("startup")
async def startup():
    STATE["startup"] += 1
    STATE["pid"] = os.getpid()


@app.on_event("shutdown")
async def shutdown():
    path = os.environ.get("FASTAPI_SHUTDOWN_FILE")
    if path:
        with open(path, "w") as f:
            f.write("shutdown ran in %d after %d startup" % (os.getpid(), STATE["startup"]))


@app.get("/__ready__")
async def ready():
    return {"ok": True}


@app.get("/state")
async def state():
    return STATE


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: Optional[str] = None, limit: int = 10):
    return {"item_id": item_id, "q": q, "limit": limit}


class Item(BaseModel):
    name: str
    price: float
    tags: List[str] = []


@app.post("/items", status_code=201)
async def create_item(item: Item):
    return {"name": item.name, "total": round(item.price * 1.2, 2), "tags": item.tags}


@app.post("/upload")
async def upload(request: Request):
    h = hashlib.sha256()
    n = chunks = 0
    async for piece in request.stream():
        if piece:
            chunks += 1
            n += len(piece)
            h.update(piece)
    return {"length": n, "sha256": h.hexdigest(), "chunks": chunks}


@app.get("/stream")
async def stream(key: str = "default"):
    ev = RELEASE.setdefault(key, asyncio.Event())

    async def gen():
        yield b"first\n"
        await asyncio.wait_for(ev.wait(), 20)
        for i in range(3):
            yield ("after release %d\n" % i).encode()

    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/release")
async def release(key: str = "default"):
    RELEASE.setdefault(key, asyncio.Event()).set()
    return {"released": key}


@app.get("/slow")
async def slow(s: float = 10):
    try:
        await asyncio.sleep(s)
    except asyncio.CancelledError:
        EVENTS.append({"slow": "cancelled"})
        raise
    return {"slept": s}


@app.post("/form")
async def form(note: str = Form(...), up: UploadFile = File(...)):
    # A multipart form with a file (python3-multipart parses it).
    data = await up.read()
    return {"note": note, "filename": up.filename, "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@app.get("/headers")
async def headers(request: Request, response: Response):
    # Repeated request headers, and repeated response headers (two cookies).
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return {"x_tag": request.headers.getlist("x-tag")}


@app.get("/sync-sleep")
def sync_sleep(s: float = 0.5):
    # A plain def: FastAPI runs it in anyio's thread pool, off the loop.
    time.sleep(s)
    return {"slept": s, "thread": threading.current_thread().name}


@app.get("/big")
async def big(mb: int = 64):
    STATE["big_sent"] = 0
    piece = b"x" * (64 << 10)

    async def gen():
        for _ in range(mb * 16):
            yield piece
            STATE["big_sent"] += len(piece)  # counted once send() returned

    return StreamingResponse(gen(), media_type="application/octet-stream")


@app.get("/boom")
async def boom():
    raise RuntimeError("fastapi boom for the test")


@app.get("/events")
async def events():
    return EVENTS


@app.websocket("/ws/echo")
async def ws_echo(ws: WebSocket):
    # The first subprotocol the client offers is taken, with a header.
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol=offered[0] if offered else None, headers=[(b"x-echo", b"yes")])
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                EVENTS.append({"socket": "echo", "code": msg.get("code")})
                return
            if msg.get("text") == "close":
                await ws.close(code=4001, reason="bye")
                return
            if msg.get("text") == "sleep":
                await asyncio.sleep(1.5)
            if msg.get("text") is not None:
                await ws.send_text("echo: " + msg["text"])
            else:
                await ws.send_bytes(b"echo: " + msg["bytes"])
    except WebSocketDisconnect as e:
        EVENTS.append({"socket": "echo", "code": e.code})


@app.websocket("/ws/push")
async def ws_push(ws: WebSocket, n: int = 3):
    await ws.accept()
    for i in range(n):
        await ws.send_json({"push": i})
        await asyncio.sleep(0.05)
    try:
        await ws.receive_text()
    except WebSocketDisconnect as e:
        EVENTS.append({"socket": "push", "code": e.code})
