"""Fails to import while the file named by $HB_BROKEN_MARKER exists."""
import os

if os.path.exists(os.environ.get("HB_BROKEN_MARKER", "/nonexistent")):
    raise RuntimeError("broken on purpose: the marker file exists")


def application(environ, start_response):
    if environ["PATH_INFO"] == "/die":
        os._exit(1)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fine"]
