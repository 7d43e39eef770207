"""Send 103 Early Hints so the browser fetches the stylesheet sooner.

Run it with:

    hornbeam --python /usr/bin/python3 --pythonpath examples early_hints_app:application

then:

    curl -v http://127.0.0.1:8000/      # shows "HTTP/1.1 103 Early Hints", then the 200

environ["wsgi.early_hints"] (a hornbeam extension, as in gunicorn) sends an
informational 103 response with the given headers right away, while the
application is still preparing the real one. Servers without it are fine:
the hints are just skipped.
"""

import time

HINTS = [("Link", "</style.css>; rel=preload; as=style")]

PAGE = b"""<!doctype html>
<html>
  <head><link rel="stylesheet" href="/style.css"><title>Early hints</title></head>
  <body><h1>Rendered after the hints</h1></body>
</html>
"""

CSS = b"body { font-family: sans-serif; }\n"


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/style.css":
        start_response("200 OK", [("Content-Type", "text/css"), ("Content-Length", str(len(CSS)))])
        return [CSS]

    send_hints = environ.get("wsgi.early_hints")
    if send_hints is not None:
        send_hints(HINTS)

    time.sleep(0.05)  # the slow part: database queries, template rendering...

    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]
