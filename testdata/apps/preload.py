"""Records which process imported it, to show --preload forks workers."""
import os

IMPORTED_BY = os.getpid()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/die":
        os.kill(os.getpid(), 9)
    if environ["PATH_INFO"] == "/segv":
        import ctypes
        ctypes.string_at(0)
    return [("%d %d" % (IMPORTED_BY, os.getpid())).encode()]
