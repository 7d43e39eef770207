"""Counts its calls in the shared state and echoes what it was given.

Used by hostile_test.go and leak_test.go. A request the server rejects must
never reach the app: the tests compare the "calls" counter (and the per-path
"path:<PATH_INFO>" counters) before and after sending it.

Routes:
  /readnothing   reads wsgi.input although no body was sent (must not hang)
  /stream        three chunks, ?delay= seconds apart (default 0.05)
  anything else  a JSON echo of the request; ?sleep=S sleeps first

Sleeps are capped at 1 s: the HTTP fuzzer may ask for any.
"""
import json
import time

import hornbeam


def _param(qs, name, default=None):
    for part in qs.split("&"):
        if part.startswith(name + "="):
            return part[len(name) + 1:]
    return default


def application(environ, start_response):
    path = environ["PATH_INFO"]
    qs = environ.get("QUERY_STRING", "")
    n = hornbeam.state_incr("calls")
    hornbeam.state_incr("path:" + path)
    inp = environ["wsgi.input"]

    if path == "/stream":
        delay = min(float(_param(qs, "delay", "0.05")), 1.0)

        def gen():
            for chunk in (b"one\n", b"two\n", b"three\n"):
                yield chunk
                time.sleep(delay)

        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()

    if path == "/readnothing":
        t0 = time.monotonic()
        out = {
            "read": inp.read().decode("latin-1"),
            "read10": inp.read(10).decode("latin-1"),
            "readline": inp.readline().decode("latin-1"),
            "read_again": inp.read().decode("latin-1"),
            "seconds": time.monotonic() - t0,
            "content_length": environ.get("CONTENT_LENGTH"),
        }
    else:
        sleep = _param(qs, "sleep")
        if sleep:
            time.sleep(min(float(sleep), 1.0))
        body = inp.read()
        # What the last call to this path was given, for tests whose
        # client cannot read the answer.
        hornbeam.state_set("last:" + path, "CONTENT_LENGTH=%s read=%d" % (environ.get("CONTENT_LENGTH"), len(body)))
        out = {
            "n": n,
            "method": environ["REQUEST_METHOD"],
            "path": path,
            "query": qs,
            "raw_uri": environ.get("RAW_URI"),
            "protocol": environ.get("SERVER_PROTOCOL"),
            "content_length": environ.get("CONTENT_LENGTH"),
            "body": body.decode("latin-1"),
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        }
    data = json.dumps(out, sort_keys=True).encode("ascii")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]
