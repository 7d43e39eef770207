"""The soak test's app: a mix of small, large, streaming and stateful routes."""
import time

import hornbeam

BIG = b"x" * 65536


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [BIG]
    if path == "/post":
        n = len(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(n).encode()]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            for i in range(5):
                yield b"chunk %d\n" % i
                time.sleep(0.01)
        return gen()
    if path == "/state":
        n = hornbeam.state_incr("soak:hits")
        hornbeam.state_set("soak:last", {"n": n, "t": time.time()}, ttl=5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(n).encode()]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World!"]
