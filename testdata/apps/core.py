"""Routes exercising the WSGI contract, one behaviour per path."""
import ctypes
import hashlib
import json
import os
import resource
import sys
import threading
import time
import urllib.parse

import hornbeam

# Module-level code runs on Python's main thread in every worker mode (an
# app may install signal handlers at import).
IMPORTED_ON_MAIN = threading.current_thread() is threading.main_thread()


def spin_forever():
    while True:
        pass


def respond(start_response, body, status="200 OK", ctype="text/plain"):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        ctype = "application/json"
    elif isinstance(body, str):
        body = body.encode()
    start_response(status, [("Content-Type", ctype)])
    return [body]


def query(environ):
    out = {}
    for part in environ.get("QUERY_STRING", "").split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = urllib.parse.unquote(v)
    return out


class Closing:
    """An iterable whose close() records itself in the shared state."""

    def __init__(self, key, chunks, delay):
        self.key, self.chunks, self.delay = key, chunks, delay

    def __iter__(self):
        for c in self.chunks:
            yield c
            time.sleep(self.delay)

    def close(self):
        hornbeam.state_incr("closed:" + self.key)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = query(environ)
    inp = environ["wsgi.input"]
    if path == "/input":
        mode = q.get("mode")
        if mode == "read":
            data = [inp.read().decode("latin-1")]
        elif mode == "readn":
            data = []
            while True:
                b = inp.read(3)
                if not b:
                    break
                data.append(b.decode("latin-1"))
        elif mode == "readline":
            data = [inp.readline().decode("latin-1"), inp.readline().decode("latin-1"), inp.read().decode("latin-1")]
        elif mode == "readlines":
            data = [x.decode("latin-1") for x in inp.readlines()]
        else:
            data = [x.decode("latin-1") for x in inp]
        return respond(start_response, {"parts": data, "length": environ.get("CONTENT_LENGTH")})
    if path == "/upload":
        h = hashlib.sha256()
        n = 0
        while True:
            b = inp.read(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        return respond(start_response, {
            "sha256": h.hexdigest(), "n": n, "length": environ.get("CONTENT_LENGTH"),
            "input": type(inp).__name__, "fileno": hasattr(inp, "fileno") and _has_fd(inp),
            "maxrss_kb": _peak_rss_kb(),
        })
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing(q.get("key", "stream"), [b"one\n", b"two\n", b"three\n"], float(q.get("delay", "0.4")))
    if path == "/bigstream":
        # A generated response of ?mb= MiB in 64 KiB chunks.
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        chunk = b"z" * 65536
        return (chunk for _ in range(int(q.get("mb", "4")) * 16))
    if path == "/slow-close":
        # close() runs after the response is sent; it takes a while, then
        # uses the shared state.
        class SlowClose(list):
            def close(self):
                time.sleep(0.5)
                hornbeam.state_incr("closed:" + q["key"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return SlowClose([b"sent"])
    if path == "/close-list":
        class L(list):
            def close(self):
                hornbeam.state_incr("closed:" + q["key"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return L([b"listed"])
    if path == "/exc_info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"recovered with exc_info"]
    if path == "/exc_info_late":
        def gen():
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"partial"
            try:
                raise ValueError("too late")
            except ValueError:
                start_response("500 Oops", [], sys.exc_info())  # must re-raise: headers are sent
            yield b"never"
        return gen()
    if path == "/boom":
        raise RuntimeError("kaboom before the response")
    if path == "/boom-late":
        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"first chunk\n"
            raise RuntimeError("kaboom mid-stream")
        return gen()
    if path == "/bad-header":
        start_response("200 OK", [("X-Evil", "a\r\nX-Injected: 1")])
        return [b"should not be sent"]
    if path == "/str-subclass-header":
        # Equal to a pair every other response sends, but not a str: the
        # check must not take it for the valid pair it has seen.
        class Text(str):
            pass
        start_response("200 OK", [("Content-Type", Text("text/plain"))])
        return [b"should not be sent"]
    if path == "/bad-header-name":
        start_response("200 OK", [("X Evil", "a")])
        return [b"should not be sent"]
    if path == "/non-latin1-header":
        start_response("200 OK", [("X-Name", "\u4e2d")])
        return [b"should not be sent"]
    if path == "/bad-status":
        start_response("OK", [])
        return [b"should not be sent"]
    if path == "/no-start":
        return [b"no start_response"]
    if path == "/not-iterable":
        start_response("200 OK", [])
        return 42
    if path == "/str-body":
        start_response("200 OK", [])
        return ["a str, not bytes"]
    if path == "/hints":
        environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
        return respond(start_response, "after hints")
    if path == "/sleep":
        time.sleep(float(q.get("s", "1")))
        return respond(start_response, "slept")
    if path == "/pid":
        if "sleep" in q:
            time.sleep(float(q["sleep"]))
        return respond(start_response, str(os.getpid()))
    if path == "/die":
        os.kill(os.getpid(), 9)
    if path == "/state-garbage":
        # A Request frame, not a StateCall, on the state socket (fd 4):
        # the server must drop this worker, not trust the stream.
        os.write(4, b"\x00\x00\x00\x01\x01\x00\x00\x00\x07x")
        time.sleep(5)
    if path == "/segv":
        ctypes.string_at(0)
    if path == "/hang":
        spin_forever()
    if path == "/log":
        print("printed to stdout by the app")
        environ["wsgi.errors"].write("written to wsgi.errors\n")
        environ["wsgi.errors"].flush()
        return respond(start_response, "logged")
    if path == "/file":
        f = open(q["path"], "rb")
        if "offset" in q:
            f.seek(int(q["offset"]))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f)
    if path == "/interp":
        # Which interpreter runs the app: the process's executable, and
        # whether a shared libpython is mapped into it.
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "libpython" in line})
        return respond(start_response, {"executable": sys.executable, "exe": os.readlink("/proc/self/exe"),
                                        "libpython": libs, "imported_on_main_thread": IMPORTED_ON_MAIN})
    if path == "/rss":
        return respond(start_response, {"maxrss_kb": _peak_rss_kb()})
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"via write(); ")
        return [b"then the iterable"]
    return respond(start_response, "not found", "404 Not Found")


def _peak_rss_kb():
    """This process's peak RSS since it started: VmHWM, not ru_maxrss, which
    Linux carries over from before exec (the server's own peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _has_fd(f):
    try:
        f.fileno()
        return True
    except Exception:
        return False
