"""An app that takes SLOW_APP_SECONDS (default 1.5) to import: the tests
signal the server while its workers boot."""

import os
import sys
import time

time.sleep(float(os.environ.get("SLOW_APP_SECONDS", "1.5")))
print("slow_app: imported in pid %d" % os.getpid())
sys.stdout.flush()


def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
