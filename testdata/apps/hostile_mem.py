"""Grows its memory on request, to test --max-worker-memory."""
import os

HOARD = []


def application(environ, start_response):
    if environ["PATH_INFO"] == "/grow":
        mb = int(environ["QUERY_STRING"].split("=")[1])
        HOARD.append(bytearray(mb << 20))
        for chunk in HOARD:
            chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
