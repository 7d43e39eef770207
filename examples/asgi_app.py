"""A plain ASGI 3 app (no framework) that exercises each scope and
extension hornbeam serves; the asgi package's tests drive it.

    hornbeam -k asgi --python /usr/bin/python3 --pythonpath examples asgi_app:app

HTTP paths: /scope (the scope as JSON), /body (length and sha256 of the
body), /disconnect (starts a response, then waits on receive() and tries
to send after the client left), /sleep?s=N, /block?s=N (time.sleep in the loop), /hints (103 Early Hints),
/trailers, /file?path=P (pathsend), /stream?chunks=N (64 KiB each, counted
in /events), /sse?n=N&gap=S (server-sent events), /error, /noresponse, /state (what lifespan startup stored),
/events. WebSocket paths: /ws/echo, /ws/close (4001 "bye"), /ws/deny
(closed before accept: 403), /ws/http (a 401 response instead),
/ws/push (three messages without reading), /ws/room?topic=T (subscribed
to T by the server; "pub:TEXT" publishes). Pub/sub over HTTP:
/astate?key=K (the async state calls), /publish?topic=T&msg=M[&json=1], /subscribe?topic=T&n=N (long poll: N different messages).

Environment: ASGI_LIFESPAN=fail makes startup fail; ASGI_SHUTDOWN_FILE is
written by the lifespan shutdown.
"""

import asyncio
import hashlib
import json
import os
from urllib.parse import parse_qs

import hornbeam
import hornbeam_erlang

EVENTS = {"cancelled": 0, "streamed": 0}


def _q(scope, name, default=""):
    return parse_qs(scope["query_string"].decode()).get(name, [default])[0]


async def _text(send, body, status=200, headers=()):
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")] + list(headers)})
    await send({"type": "http.response.body", "body": body if isinstance(body, bytes) else body.encode()})


async def _json(send, obj):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(obj).encode()})


async def _body(receive):
    chunks = []
    while True:
        m = await receive()
        if m["type"] == "http.disconnect":
            return None
        chunks.append(m.get("body", b""))
        if not m.get("more_body"):
            return chunks


async def lifespan(scope, receive, send):
    while True:
        m = await receive()
        if m["type"] == "lifespan.startup":
            if os.environ.get("ASGI_LIFESPAN") == "fail":
                await send({"type": "lifespan.startup.failed", "message": "no database (ASGI_LIFESPAN=fail)"})
                return
            scope["state"]["started"] = "yes"
            scope["state"]["pid"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
        elif m["type"] == "lifespan.shutdown":
            path = os.environ.get("ASGI_SHUTDOWN_FILE")
            if path:
                with open(path, "w") as f:
                    f.write("shutdown %d\n" % os.getpid())
            await send({"type": "lifespan.shutdown.complete"})
            return


async def websocket(scope, receive, send):
    path = scope["path"][len(scope.get("root_path", "")):]
    m = await receive()
    assert m["type"] == "websocket.connect"
    if path == "/ws/deny":
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/ws/http":
        await send({"type": "websocket.http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"nope"})
        return
    subs = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": subs[0] if subs else None, "headers": [(b"x-accepted", b"1")]})
    if path == "/ws/room":
        # Every message published to the topic is written to this socket
        # by the server; "pub:TEXT" publishes TEXT (as hornbeam_erlang would).
        topic = _q(scope, "topic", "room")
        await hornbeam.ws_subscribe(topic)
        await send({"type": "websocket.send", "text": "subscribed"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                return
            text = m.get("text") or ""
            if text.startswith("pub:"):
                hornbeam_erlang.publish(topic, text[4:])
    if path == "/ws/close":
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
        return
    if path == "/ws/push":
        for i in range(3):
            await send({"type": "websocket.send", "text": "push %d" % i})
            await asyncio.sleep(0.05)
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            EVENTS["ws_closed"] = [m["code"], m.get("reason", "")]
            return
        if m.get("text") is not None:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]  # mounted (--mount): path is the whole path (ASGI 2.4)
    if path.startswith("/scope"):
        s = {k: v for k, v in scope.items() if k not in ("state", "extensions")}
        s["raw_path"] = scope["raw_path"].decode("latin-1")
        s["query_string"] = scope["query_string"].decode("latin-1")
        s["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        s["extensions"] = sorted(scope.get("extensions", {}))
        s["tls"] = scope.get("extensions", {}).get("tls")
        return await _json(send, s)
    if path == "/body":
        chunks = await _body(receive)
        data = b"".join(chunks)
        return await _json(send, {"length": len(data), "sha256": hashlib.sha256(data).hexdigest(), "messages": len(chunks)})
    if path == "/disconnect":
        await _body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
        m = await receive()  # must wait until the client really leaves
        EVENTS["disconnect"] = m["type"]
        try:
            await send({"type": "http.response.body", "body": b"late\n", "more_body": True})
            EVENTS["send_after"] = "no exception"
        except OSError as e:
            EVENTS["send_after"] = "OSError:" + type(e).__name__
        return
    if path == "/sleep":
        try:
            await asyncio.sleep(float(_q(scope, "s", "1")))
        except asyncio.CancelledError:
            EVENTS["cancelled"] += 1
            raise
        return await _text(send, "slept\n")
    if path == "/block":
        import time

        time.sleep(float(_q(scope, "s", "1")))  # a synchronous call in async code: blocks the loop
        return await _text(send, "blocked\n")
    if path == "/hints":
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]})
        return await _text(send, "hinted\n")
    if path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")], "trailers": True})
        await send({"type": "http.response.body", "body": b"body\n"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})
        return
    if path == "/file":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": _q(scope, "path")})
        return
    if path == "/zerocopy":
        # Bytes 5 to 104 of the file, then from 10 to the end: the second
        # message has no offset, so it starts at the file's position.
        with open(_q(scope, "path"), "rb") as f:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.zerocopysend", "file": f, "offset": 5, "count": 100, "more_body": True})
            f.seek(10)
            await send({"type": "http.response.zerocopysend", "file": f})
            EVENTS["zerocopy_position"] = f.tell()
        return
    if path == "/sse":
        # Server-sent events, N of them GAP seconds apart.
        n, gap = int(_q(scope, "n", "3")), float(_q(scope, "gap", "0.5"))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True})
            await asyncio.sleep(gap)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/stream":
        n = int(_q(scope, "chunks", "4"))
        chunk = b"x" * 65536
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(n):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < n - 1})
            EVENTS["streamed"] += len(chunk)
        return
    if path == "/publish":
        msg = _q(scope, "msg")
        n = hornbeam.publish(_q(scope, "topic", "room"), json.loads(msg) if _q(scope, "json") else msg)
        return await _text(send, str(n))
    if path == "/subscribe":
        # Long poll: the next N different messages of the topic, as JSON.
        got = []
        async with hornbeam.subscribe(_q(scope, "topic", "room")) as sub:
            async for m in sub:
                m = m if isinstance(m, str) else m.decode("latin-1")
                if m not in got:
                    got.append(m)
                if len(got) == int(_q(scope, "n", "1")):
                    break
        return await _json(send, got)
    if path == "/error":
        raise RuntimeError("boom in /error")
    if path == "/noresponse":
        return
    if path == "/state":
        return await _json(send, dict(scope["state"]))
    if path == "/astate":
        # The shared state from async code, without blocking the loop.
        key = _q(scope, "key", "k")
        await hornbeam.astate_set(key, {"v": [1, 2]}, ttl=60)
        n = await hornbeam.astate_incr(key + ":n", 5)
        n = await hornbeam.astate_decr(key + ":n", 2)
        got = await hornbeam.astate_get(key)
        multi = await hornbeam.astate_get_multi([key, key + ":n", key + ":none"])
        keys = await hornbeam.astate_keys(key)
        gone = await hornbeam.astate_delete(key)
        return await _json(send, {"got": got, "n": n, "multi": [multi[key], multi[key + ":n"], multi[key + ":none"]],
                                  "keys": sorted(keys), "deleted": gone, "after": await hornbeam.astate_get(key)})
    if path == "/events":
        return await _json(send, EVENTS)
    if path == "/pid":
        return await _text(send, str(os.getpid()))
    return await _text(send, "not found\n", status=404)
