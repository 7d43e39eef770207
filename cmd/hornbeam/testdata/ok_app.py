"""A small WSGI app for the hornbeam command's tests.

Routes:
  /pid           the worker's process id
  /sleep?s=N     prints "ok_app: sleeping N", sleeps N seconds (a float),
                 then answers "slept N"
  anything else  "hello from ok_app"
"""

import os
import sys
import time

# Printed at import time: the tests look for it in the error log.
print("ok_app: imported in pid %d" % os.getpid())
sys.stdout.flush()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/pid":
        body = str(os.getpid()).encode()
    elif path == "/sleep":
        secs = 0.0
        for kv in environ.get("QUERY_STRING", "").split("&"):
            k, _, v = kv.partition("=")
            if k == "s":
                secs = float(v)
        # Tells the tests (through the error log) that the request arrived.
        print("ok_app: sleeping %s" % secs, flush=True)
        time.sleep(secs)
        body = ("slept %s" % secs).encode()
    else:
        body = b"hello from ok_app"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
