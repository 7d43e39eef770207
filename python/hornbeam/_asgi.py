"""ASGI in the embedded worker: the Python half (package asgi is the Go half).

One asyncio event loop per worker process runs on Python's main thread,
started by Go with run(). Go owns the sockets, HTTP and the WebSocket
protocol; only ASGI messages cross, as tuples:

    Go -> Python, in batches: Go appends events to a queue and writes to an
    eventfd (wake_fd); the loop's reader on it calls pull(), a Go function
    that returns the list of events waiting.

    Python -> Go: emit(op), a Go function called on the loop's thread. It
    never blocks: it queues the op for the stream's goroutine and returns
    True when the stream has too many bytes or messages unsent (the app's
    send() then waits for a CREDIT event: backpressure).

The event and op numbers below are the whole protocol; asgi/protocol.go
defines the same numbers on the Go side.

A scope arrives as (type, http_version, method, scheme, path, raw_path,
query_string, root_path, headers, client, server, subprotocols, tls, app
index); the body
of an http request comes with it when Go has it all (the common case), and
in BODY events otherwise, one at a time (Go reads the next chunk once this
side has taken the previous one: WANT).
"""

import asyncio
import collections
import contextvars
import os
import sys
import traceback

# Go -> Python events: (EV_*, stream id, ...)
EV_HTTP = 1  # scope, body, more_body
EV_BODY = 2  # body, more_body
EV_DISCONNECT = 3  # the client is gone (or the response is over)
EV_CREDIT = 4  # send() may go on
EV_WS = 5  # scope
EV_WS_MSG = 6  # is_text, data (bytes)
EV_WS_CLOSED = 7  # code, reason
EV_CANCEL = 8  # the request timed out: cancel its task
EV_LIFESPAN = 9  # "startup" or "shutdown"
EV_STOP = 10  # stop the loop
EV_PING = 11  # answer PONG: the loop is alive
EV_PUBLISH = 12  # topic, is_text, data: for this worker's subscribe() iterators

# Python -> Go ops: (OP_*, stream id, ...)
OP_START = 1  # status, headers, trailers
OP_BODY = 2  # body, more_body
OP_HINT = 3  # headers (103 Early Hints)
OP_TRAILERS = 4  # headers, more_trailers
OP_FILE = 5  # path (pathsend)
OP_ACCEPT = 6  # subprotocol, headers
OP_WS_SEND = 7  # is_text, data (bytes)
OP_WS_CLOSE = 8  # code, reason
OP_DONE = 9  # error text or None: the app's task ended
OP_WANT = 10  # the next body chunk or message may come
OP_LIFESPAN = 11  # phase, outcome ("complete", "failed", "unsupported"), message
OP_PONG = 12
OP_ZEROCOPY = 14  # fd (a dup, Go's to close), offset, count (-1: to the end), more_body
OP_SUBSCRIBE = 13  # topic, on: stream id 0 for subscribe(), else a WebSocket's (ws_subscribe)

# The worker's Runner, for hornbeam.subscribe and ws_subscribe.
RUNNER = None
# The stream whose task is running (set in each task's own context).
_CURRENT = contextvars.ContextVar("hornbeam_asgi_stream")

ASGI = {"version": "3.0", "spec_version": "2.4"}


class ClientDisconnected(OSError):
    """send() after the client went away (ASGI spec 2.4)."""


def is_asgi(app):
    """Whether app looks like an ASGI application: "3" for a coroutine
    function (or an object whose __call__ is one), "2" for a class whose
    instances are awaited with (receive, send), None otherwise."""
    import inspect

    if inspect.isclass(app):
        call = getattr(app, "__call__", None)
        return "2" if call is not None and inspect.iscoroutinefunction(call) and not hasattr(app, "__await__") else None
    if inspect.iscoroutinefunction(app):
        return "3"
    call = getattr(app, "__call__", None)
    if call is not None and inspect.iscoroutinefunction(call):
        return "3"
    return None


def _log(text):
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def _headers(raw):
    """The app's headers as a list of (bytes, bytes) for marshal; Go checks
    the names and values."""
    out = []
    for pair in raw:
        name, value = pair
        if not isinstance(name, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
            raise TypeError("ASGI headers must be pairs of bytes, got %r" % (pair,))
        out.append((bytes(name), bytes(value)))
    return out


class _Stream:
    """One HTTP request or WebSocket: its inbox (what receive() returns),
    and the futures its task waits on."""

    __slots__ = ("runner", "sid", "inbox", "waiter", "credit", "gone", "task", "kind", "accepted", "closed", "started", "ended", "trailers")

    def __init__(self, runner, sid, kind):
        self.runner = runner
        self.sid = sid
        self.kind = kind
        # A list, not a deque: it holds a few messages at most (Go reads
        # ahead by 32 WebSocket messages or one body chunk), and an empty
        # deque costs about 600 bytes, for each of thousands of idle sockets.
        self.inbox = []
        self.waiter = None  # receive() waiting for the inbox
        self.credit = None  # send() waiting for EV_CREDIT
        self.gone = False  # the client left (or the response is over)
        self.task = None
        self.accepted = False  # websocket
        self.closed = False  # websocket closed by the app
        self.started = False  # http.response.start sent
        self.ended = False  # the response is complete
        self.trailers = False  # trailers announced

    def _put(self, msg):
        self.inbox.append(msg)
        self._wake()

    def _wake(self):
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _disconnect(self):
        self.gone = True
        self._wake()
        c = self.credit
        if c is not None and not c.done():
            c.set_exception(ClientDisconnected("the client disconnected"))

    async def receive(self):
        while not self.inbox:
            if self.gone:
                if self.kind == "websocket":
                    return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
                return {"type": "http.disconnect"}
            self.waiter = self.runner.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        msg = self.inbox.pop(0)
        t = msg["type"]
        if (t == "http.request" and msg["more_body"]) or t == "websocket.receive":
            self.runner.emit((OP_WANT, self.sid))
        return msg

    async def _emit_waiting(self, op):
        # emit returns True when the stream is over its window: wait for
        # EV_CREDIT (or a disconnect, which raises).
        if self.runner.emit(op):
            self.credit = self.runner.loop.create_future()
            try:
                await self.credit
            finally:
                self.credit = None

    async def send(self, msg):
        t = msg["type"]
        if t.startswith("websocket.http.response.") and self.kind == "websocket":
            t = t[10:]  # the websocket.http.response extension: an HTTP response instead
        if self.gone:
            raise ClientDisconnected("the client disconnected; %s not sent" % t)
        sid = self.sid
        emit = self.runner.emit
        if t == "http.response.body":
            if not self.started:
                raise RuntimeError("http.response.body sent before http.response.start")
            if self.ended:
                raise RuntimeError("http.response.body sent after the response ended (more_body was False)")
            more = bool(msg.get("more_body", False))
            if not more and not self.trailers:
                self.ended = True
            body = msg.get("body", b"")
            if type(body) is not bytes:
                body = bytes(body)
            await self._emit_waiting((OP_BODY, sid, body, more))
        elif t == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            if self.kind == "websocket" and self.accepted:
                raise RuntimeError("http.response.start after websocket.accept")
            status = msg["status"]
            if type(status) is not int:
                raise TypeError("http.response.start status must be an int, got %r" % (status,))
            self.started = True
            self.trailers = bool(msg.get("trailers", False))
            emit((OP_START, sid, status, _headers(msg.get("headers", ())), self.trailers))
        elif t == "http.response.trailers":
            if not self.trailers:
                raise RuntimeError("http.response.trailers without trailers=True in http.response.start")
            more = bool(msg.get("more_trailers", False))
            if not more:
                self.ended = True
            emit((OP_TRAILERS, sid, _headers(msg.get("headers", ())), more))
        elif t == "http.response.early_hint":
            if self.started:
                raise RuntimeError("http.response.early_hint after http.response.start")
            links = msg.get("links", ())
            emit((OP_HINT, sid, [bytes(l) if not isinstance(l, str) else l.encode("latin-1") for l in links]))
        elif t == "http.response.pathsend":
            if not self.started or self.ended:
                raise RuntimeError("http.response.pathsend needs http.response.start first, and ends the response")
            path = msg["path"]
            if not os.path.isabs(path):
                raise ValueError("http.response.pathsend: path must be absolute, got %r" % (path,))
            self.ended = True
            emit((OP_FILE, sid, os.fsencode(path)))
        elif t == "http.response.zerocopysend":
            if not self.started or self.ended:
                raise RuntimeError("http.response.zerocopysend needs http.response.start first, and not after the end")
            f = msg["file"]
            fd = f if isinstance(f, int) else f.fileno()
            offset = msg.get("offset")
            if offset is None:
                offset = os.lseek(fd, 0, os.SEEK_CUR)  # the file's position, as the extension says
            count = msg.get("count")
            more = bool(msg.get("more_body", False))
            if not more and not self.trailers:
                self.ended = True
            emit((OP_ZEROCOPY, sid, os.dup(fd), int(offset), -1 if count is None else int(count), more))
        elif t == "websocket.send":
            if not self.accepted or self.closed:
                raise RuntimeError("websocket.send before websocket.accept or after websocket.close")
            text = msg.get("text")
            if text is not None:
                await self._emit_waiting((OP_WS_SEND, sid, True, text.encode("utf-8")))
            else:
                data = msg.get("bytes")
                if data is None:
                    raise ValueError("websocket.send needs 'bytes' or 'text'")
                await self._emit_waiting((OP_WS_SEND, sid, False, bytes(data)))
        elif t == "websocket.accept":
            if self.accepted or self.started or self.closed:
                raise RuntimeError("websocket.accept sent twice, or after a close or a response")
            self.accepted = True
            emit((OP_ACCEPT, sid, msg.get("subprotocol"), _headers(msg.get("headers", ()))))
        elif t == "websocket.close":
            if self.closed:
                raise RuntimeError("websocket.close sent twice")
            self.closed = True
            reason = msg.get("reason") or ""
            emit((OP_WS_CLOSE, sid, int(msg.get("code", 1000)), reason))
        else:
            raise ValueError("unknown ASGI message type %r for a %s scope" % (t, self.kind))


class Runner:
    """The worker's event loop and its apps (one per --mount; a scope says
    which). Go calls run() once on Python's main thread; it returns when Go
    sends EV_STOP."""

    def __init__(self, apps, emit, pull, wake_fd, lifespan):
        self.apps = [_Mounted(app, version) for app, version in apps]
        self.emit = emit
        self.pull = pull
        self.wake_fd = wake_fd
        self.lifespan_mode = lifespan  # "auto", "on", "off"
        self.kind = "asgi"
        self.loop = None
        self.streams = {}
        self.subs = {}  # topic -> set of Subscription
        global RUNNER
        RUNNER = self

    def run(self):
        try:
            import uvloop  # noqa: F401  (used when installed)
            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        loop.add_reader(self.wake_fd, self._wake)
        try:
            loop.run_forever()
        finally:
            loop.remove_reader(self.wake_fd)
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _wake(self):
        # The hot path: every event of a batch, dispatched in order.
        try:
            os.read(self.wake_fd, 8)
        except BlockingIOError:
            pass
        for ev in self.pull(None):  # a Go function of one argument
            kind = ev[0]
            st = self.streams.get(ev[1])
            if kind == EV_HTTP:
                self._start(ev[1], "http", ev[2], {"type": "http.request", "body": ev[3], "more_body": ev[4]})
            elif kind == EV_BODY:
                if st is not None:
                    st._put({"type": "http.request", "body": ev[2], "more_body": ev[3]})
            elif kind == EV_CREDIT:
                if st is not None and st.credit is not None and not st.credit.done():
                    st.credit.set_result(None)
            elif kind == EV_DISCONNECT:
                if st is not None:
                    st._disconnect()
            elif kind == EV_WS:
                self._start(ev[1], "websocket", ev[2], {"type": "websocket.connect"})
            elif kind == EV_WS_MSG:
                if st is not None:
                    if ev[2]:
                        st._put({"type": "websocket.receive", "text": ev[3].decode("utf-8")})
                    else:
                        st._put({"type": "websocket.receive", "bytes": ev[3]})
            elif kind == EV_WS_CLOSED:
                if st is not None:
                    st._put({"type": "websocket.disconnect", "code": ev[2], "reason": ev[3]})
                    st._disconnect()
            elif kind == EV_CANCEL:
                if st is not None and st.task is not None:
                    st.task.cancel()
            elif kind == EV_PUBLISH:
                msg = ev[4].decode("utf-8") if ev[3] else ev[4]
                for sub in self.subs.get(ev[2], ()):
                    sub._put(msg)
            elif kind == EV_PING:
                self.emit((OP_PONG, 0))
            elif kind == EV_LIFESPAN:
                self._lifespan(ev[2])
            elif kind == EV_STOP:
                self.loop.stop()

    def _scope(self, kind, s):
        scope = {
            "type": kind,
            "asgi": ASGI,
            "http_version": s[1],
            "scheme": s[3],
            "path": s[4],
            "raw_path": s[5],
            "query_string": s[6],
            "root_path": s[7],
            "headers": s[8],
            "client": s[9],
            "server": s[10],
            "state": self.apps[s[13]].state.copy(),
            "extensions": _EXTENSIONS[kind],
        }
        if s[12] is not None:
            scope["extensions"] = dict(scope["extensions"], tls=_tls(s[12]))
        if kind == "http":
            scope["method"] = s[2]
        else:
            scope["subprotocols"] = s[11]
            _share_scope(scope)
        return scope

    def _start(self, sid, kind, s, first):
        st = _Stream(self, sid, kind)
        st.inbox.append(first)
        self.streams[sid] = st
        scope = self._scope(kind, s)
        st.task = self.loop.create_task(self._call(st, self.apps[s[13]], scope))

    async def _call(self, st, m, scope):
        _CURRENT.set(st)
        err = None
        try:
            if m.version == "2":
                await m.app(scope)(st.receive, st.send)
            else:
                await m.app(scope, st.receive, st.send)
        except asyncio.CancelledError:
            err = "cancelled (--timeout)"
        except ClientDisconnected:
            pass  # the client left: nothing to report
        except BaseException as e:  # noqa: B902 - every failure is reported to Go
            if st.gone and type(e).__name__.endswith("Disconnect"):
                return self.emit((OP_DONE, st.sid, None))  # a framework's WebSocketDisconnect: the client left
            err = "Exception in ASGI application (%s %s):\n%s" % (scope.get("method", "WEBSOCKET"), scope["path"], traceback.format_exc())
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                err += "(%s in a request ends only that request)\n" % type(e).__name__
        finally:
            del self.streams[st.sid]
        self.emit((OP_DONE, st.sid, err))

    # Pub/sub (hornbeam.subscribe, unsubscribe, ws_subscribe).

    def subscribe(self, topic):
        if type(topic) is not str:
            raise TypeError("a topic must be a str, got %s" % type(topic).__name__)
        sub = Subscription(self, topic)
        subs = self.subs.setdefault(topic, set())
        subs.add(sub)
        if len(subs) == 1:
            self.emit((OP_SUBSCRIBE, 0, topic, True))
        return sub

    def _drop(self, sub):
        subs = self.subs.get(sub.topic)
        if subs is not None and sub in subs:
            subs.discard(sub)
            if not subs:
                del self.subs[sub.topic]
                self.emit((OP_SUBSCRIBE, 0, sub.topic, False))

    def unsubscribe(self, topic):
        for sub in list(self.subs.get(topic, ())):
            sub.close()

    def ws_subscribe(self, topic, on):
        if type(topic) is not str:
            raise TypeError("a topic must be a str, got %s" % type(topic).__name__)
        st = _CURRENT.get(None)
        if st is None or st.kind != "websocket":
            raise RuntimeError("ws_subscribe() must be called from a WebSocket's task")
        self.emit((OP_SUBSCRIBE, st.sid, topic, on))

    # Lifespan: one task per app, started by Go before it serves; each
    # reports with the app's index as its stream id.

    def _lifespan(self, phase):
        for i, m in enumerate(self.apps):
            if phase == "startup":
                st = _Stream(self, i, "lifespan")
                m.lifespan = st
                st.inbox.append({"type": "lifespan.startup"})
                st.task = self.loop.create_task(self._run_lifespan(i, m, st))
            else:
                st = m.lifespan
                if st is None or st.task.done():
                    self.emit((OP_LIFESPAN, i, "shutdown", "unsupported", ""))
                else:
                    st._put({"type": "lifespan.shutdown"})

    async def _run_lifespan(self, i, m, st):
        scope = {"type": "lifespan", "asgi": ASGI, "state": m.state}
        phase = ["startup"]

        async def send(msg):
            t = msg.get("type", "")
            for p in ("startup", "shutdown"):
                if t == "lifespan.%s.complete" % p:
                    phase[0] = p + "-done"
                    self.emit((OP_LIFESPAN, i, p, "complete", ""))
                    return
                if t == "lifespan.%s.failed" % p:
                    phase[0] = p + "-done"
                    self.emit((OP_LIFESPAN, i, p, "failed", str(msg.get("message", ""))))
                    return
            raise ValueError("unknown lifespan message %r" % (t,))

        async def receive():
            msg = await st.receive()
            if msg["type"] == "lifespan.shutdown":
                phase[0] = "shutdown"
            return msg

        try:
            if m.version == "2":
                await m.app(scope)(receive, send)
            else:
                await m.app(scope, receive, send)
            outcome, text = "unsupported", "the app returned without answering lifespan.%s" % phase[0]
        except BaseException:  # noqa: B902 - the traceback goes to Go, to log or to stop with
            outcome, text = "unsupported", traceback.format_exc()
        if phase[0] in ("startup", "shutdown"):
            self.emit((OP_LIFESPAN, i, phase[0], outcome, text))


class _Mounted:
    """One app of the Runner: its callable, its ASGI version ("3" or "2"),
    the state its lifespan startup fills, and its lifespan stream."""

    __slots__ = ("app", "version", "state", "lifespan")

    def __init__(self, app, version):
        self.app = app
        self.version = version
        self.state = {}
        self.lifespan = None


# Values that repeat from one WebSocket scope to the next (header names,
# the usual values of a few headers, the HTTP version, the scheme, the
# server address): a WebSocket's scope lives as long as the socket, and
# with thousands of idle sockets one shared copy of each saves about 600
# bytes per socket. Bounded: past _SHARED_MAX values, the rest are kept
# as they came.
_SHARED = {}
_SHARED_MAX = 1024
_SHARED_VALUES = frozenset((b"connection", b"upgrade", b"sec-websocket-version", b"accept-encoding", b"user-agent", b"origin", b"pragma", b"cache-control", b"accept-language", b"sec-websocket-extensions"))


def _share(v):
    s = _SHARED.get(v)
    if s is None:
        if len(_SHARED) >= _SHARED_MAX:
            return v
        _SHARED[v] = s = v
    return s


def _share_scope(scope):
    for k in ("http_version", "scheme", "server"):
        scope[k] = _share(scope[k])
    scope["headers"] = [
        (_share(n), _share(v) if n in _SHARED_VALUES else v) for n, v in scope["headers"]
    ]


def _tls(t):
    """The tls extension's dict from (version, cipher suite, client PEMs,
    the client certificate's subject as an RFC 4514 string or None)."""
    version, cipher, chain, name = t
    return {
        "server_cert": None,
        "client_cert_chain": list(chain),
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": version,
        "cipher_suite": cipher,
    }


class Subscription:
    """The messages published to a topic, as an async iterator; it ends
    once closed (close(), unsubscribe(topic), or leaving `async with`).
    It keeps at most MAX_QUEUED messages not yet taken, dropping the
    oldest beyond."""

    MAX_QUEUED = 10000

    def __init__(self, runner, topic):
        self.runner = runner
        self.topic = topic
        self.queue = collections.deque()
        self.waiter = None
        self.closed = False
        self.dropped = 0

    def _put(self, msg):
        if len(self.queue) >= self.MAX_QUEUED:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(msg)
        self._wake()

    def _wake(self):
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def close(self):
        if not self.closed:
            self.closed = True
            self.runner._drop(self)
            self._wake()

    def __aiter__(self):
        return self

    async def __anext__(self):
        while not self.queue:
            if self.closed:
                raise StopAsyncIteration
            self.waiter = self.runner.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.queue.popleft()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()


_EXTENSIONS = {
    "http": {
        "http.response.early_hint": {},
        "http.response.pathsend": {},
        "http.response.trailers": {},
        "http.response.zerocopysend": {},
    },
    "websocket": {"websocket.http.response": {}},
}


def runner(emit, pull, wake_fd, lifespan, *apps):
    """The Runner Go starts (apps: the _embed.ASGIApp of each mount): see
    Runner.run."""
    return Runner([(a.app, a.version) for a in apps], emit, pull, wake_fd, lifespan)
