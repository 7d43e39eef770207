"""A Quart app (Debian's python3-quart 0.18) served by hornbeam's ASGI mode;
asgi/frameworks_test.go drives it.

    hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples asgi_quart:app

HTTP: GET /users/<int:uid>?fields= (path and query), POST /json (the JSON
body back), POST /upload (the body iterated as it streams: length, sha256,
parts), GET /stream (an async generator: its first line, then it waits for
GET /release), GET /boom (raises), GET /serving (what before_serving set).
WebSocket: /ws/echo (text back; "close" closes with 4003 "quart bye"),
/ws/push?n=N (N messages while the client says nothing, then 1000),
/ws/private?token=secret (without the token: Quart's 401 page instead of
the handshake).

Environment: QUART_SHUTDOWN_FILE is written by after_serving.
"""

import asyncio
import hashlib
import os

from quart import Quart, abort, jsonify, request, websocket

app = Quart(__name__)

SERVING = {"before_serving": 0}
RELEASE = asyncio.Event()


@app.before_serving
async def before_serving():
    SERVING["before_serving"] += 1
    SERVING["pid"] = os.getpid()


@app.after_serving
async def after_serving():
    path = os.environ.get("QUART_SHUTDOWN_FILE")
    if path:
        with open(path, "w") as f:
            f.write("after_serving ran")


@app.route("/__ready__")
async def ready():
    return "ok"


@app.route("/serving")
async def serving():
    return jsonify(SERVING)


@app.route("/users/<int:uid>")
async def user(uid):
    return jsonify({"uid": uid, "fields": request.args.getlist("fields"), "method": request.method})


@app.route("/json", methods=["POST"])
async def json_echo():
    data = await request.get_json()
    return jsonify({"got": data, "keys": sorted(data)}), 201


@app.route("/upload", methods=["POST"])
async def upload():
    h = hashlib.sha256()
    n = parts = 0
    async for piece in request.body:
        if piece:
            parts += 1
            n += len(piece)
            h.update(piece)
    return jsonify({"length": n, "sha256": h.hexdigest(), "parts": parts})


@app.route("/stream")
async def stream():
    async def gen():
        yield b"first\n"
        await asyncio.wait_for(RELEASE.wait(), 20)
        for i in range(3):
            yield b"after release %d\n" % i

    return gen(), 200, {"Content-Type": "text/plain"}


@app.route("/release")
async def release():
    RELEASE.set()
    return "released"


@app.route("/boom")
async def boom():
    raise KeyError("quart boom for the test")


@app.websocket("/ws/echo")
async def ws_echo():
    while True:
        data = await websocket.receive()
        if data == "close":
            await websocket.close(4003, "quart bye")
            return
        await websocket.send("quart: %s" % data)


@app.websocket("/ws/private")
async def ws_private():
    # abort() before accepting: Quart sends its 401 page with the
    # websocket.http.response extension.
    if websocket.args.get("token") != "secret":
        abort(401)
    await websocket.accept()
    await websocket.send("welcome")


@app.websocket("/ws/push")
async def ws_push():
    n = int(websocket.args.get("n", "3"))
    await websocket.accept()
    for i in range(n):
        await websocket.send_json({"push": i})
        await asyncio.sleep(0.05)
    await websocket.close(1000, "done")
