"""ASGI benchmark app (bench/servers/asgi.py): a raw ASGI 3 app, no
framework. GET anything: 200 "Hello, World!" (13 bytes, text/plain). A
WebSocket at any path: accepted, and every message echoed back as it came
(text as text, bytes as bytes). Lifespan: startup and shutdown acknowledged.
"""

BODY = b"Hello, World!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
END = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    t = scope["type"]
    if t == "http":
        await send(START)
        await send(END)
    elif t == "websocket":
        msg = await receive()
        if msg["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.receive":
                if msg.get("text") is not None:
                    await send({"type": "websocket.send", "text": msg["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})
            elif msg["type"] == "websocket.disconnect":
                return
    elif t == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


application = app
