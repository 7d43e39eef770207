"""A WSGI app whose /hang never answers (for --timeout), and whose other
paths answer the worker's pid."""

import os
import time


def application(environ, start_response):
    if environ["PATH_INFO"] == "/hang":
        time.sleep(3600)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
