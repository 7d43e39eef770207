"""The embedded handler's test app: one app per process, so this one routes
on the X-Test-App header to the repository's test apps (default core)."""
import json
import signal
import sys
import threading

import core  # testdata/apps/core.py: the WSGI contract, one path each
import echo  # testdata/apps/echo.py: the environ as JSON
import flask_app  # examples/flask_app.py
import hello  # examples/hello.py


def extra(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/exit":
        sys.exit(3)
    if path == "/interrupt":
        raise KeyboardInterrupt
    if path == "/signal":
        # Not the main thread: Python refuses, Go keeps its handlers.
        signal.signal(signal.SIGUSR1, lambda *a: None)
    if path == "/big":
        # A list response of ?N bytes: sent from Python's buffer.
        n = int(environ["QUERY_STRING"])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"x" * (n // 2), b"y" * (n - n // 2)]
    if path == "/types":
        body = json.dumps({k: type(v).__name__ for k, v in environ.items()}, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/spin":
        # Pure Python for a while: the GIL is released only when asked.
        import time
        end = time.monotonic() + float(environ["QUERY_STRING"] or "1")
        while time.monotonic() < end:
            pass
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"spun"]
    if path == "/id":
        # A response computed from the request, to check concurrent ones.
        q = environ["QUERY_STRING"]
        body = ("%s:%d" % (q, sum(map(ord, q)))).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/status-1xx":
        start_response("102 Processing", [])  # Python's check allows it, Go's refuses
        return [b"should not be sent"]
    if path == "/ctl-header":
        start_response("200 OK", [("X-Ctl", "a\x01b")])
        return [b"should not be sent"]
    if path == "/hop":
        start_response("200 OK", [("Connection", "close"), ("Transfer-Encoding", "chunked"), ("X-Ok", "1")])
        return [b"hop"]
    if path == "/latin1":
        start_response("200 OK", [("X-Name", "caf\u00e9")])
        return [b"latin1"]
    if path == "/empty-gen":
        start_response("204 No Content", [])
        return iter([b"", b""])
    if path == "/write-thread":
        write = start_response("200 OK", [])
        out = []
        t = threading.Thread(target=lambda: out.append(_try(write, b"from a thread")))
        t.start()
        t.join()
        return [json.dumps(out).encode()]
    if path == "/gen-input":
        # A generator reading a spooled body while it streams.
        inp = environ["wsgi.input"]
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first "
            n = 0
            while True:
                b = inp.read(65536)
                if not b:
                    break
                n += len(b)
            yield str(n).encode()
        return gen()
    if path == "/python-info":
        import hornbeam
        body = json.dumps({
            "executable": sys.executable, "argv": sys.argv, "threads": threading.active_count(),
            "main": threading.current_thread() is threading.main_thread(),
            "closed": {k: hornbeam.state_get(k) for k in hornbeam.state_keys("closed:")},
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/spawn":
        # multiprocessing's spawn starts sys.executable: the interpreter,
        # not the server binary.
        import multiprocessing
        import os
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pid = pool.apply(os.getpid)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"child pid differs: %s" % str(pid != os.getpid()).encode()]
    if path == "/state-incr":
        import hornbeam
        body = str(hornbeam.state_incr("hits", 2)).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/counts":
        import gc
        gc.collect()
        body = json.dumps({"blocks": sys.getallocatedblocks(), "objects": len(gc.get_objects())}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    start_response("404 Not Found", [])
    return [b"no such test path"]


def _try(f, *args):
    try:
        f(*args)
        return "ok"
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)


APPS = {
    "core": core.application,
    "echo": echo.application,
    "flask": flask_app.application,
    "hello": hello.application,
    "extra": extra,
}


def application(environ, start_response):
    return APPS[environ.get("HTTP_X_TEST_APP", "core")](environ, start_response)
