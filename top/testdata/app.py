"""A tiny WSGI app for hornbeam top's tests.

/sleep?s=N&release=PATH  holds its worker up to N seconds (default 10),
                         returning early once the file PATH exists
/missing                 404
anything else            200 "ok"
"""
import os
import time
import urllib.parse


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    q = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    status = "200 OK"
    if path == "/sleep":
        deadline = time.monotonic() + float(q.get("s", ["10"])[0])
        release = q.get("release", [""])[0]
        while time.monotonic() < deadline:
            if release and os.path.exists(release):
                break
            time.sleep(0.02)
    elif path == "/missing":
        status = "404 Not Found"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"ok\n"]
