"""WSGI middleware: a class wrapping an application to log and time requests.

Run it with:

    hornbeam --python /usr/bin/python3 --pythonpath examples middleware_app:application

Every response gets an X-Request-Time header (seconds the application took
to start its response), and a line like

    GET /hello -> 200 OK in 0.12 ms

goes to wsgi.errors, which hornbeam copies to its error log. The same
middleware wraps any WSGI application: Flask's app.wsgi_app, Django's
get_wsgi_application(), ...
"""

import time


class RequestLogger:
    """Logs method, path and status of each request; adds X-Request-Time."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        started = time.perf_counter()

        def timed_start_response(status, headers, exc_info=None):
            elapsed = time.perf_counter() - started
            headers = list(headers) + [("X-Request-Time", "%.6f" % elapsed)]
            errors = environ["wsgi.errors"]
            errors.write("%s %s -> %s in %.2f ms\n" % (
                environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), status, elapsed * 1000))
            errors.flush()
            return start_response(status, headers, exc_info)

        return self.app(environ, timed_start_response)


def hello_app(environ, start_response):
    """The wrapped application: /hello answers, everything else is a 404."""
    if environ.get("PATH_INFO") == "/hello":
        body = b"Hello from behind the middleware!\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    body = b"Not Found\n"
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = RequestLogger(hello_app)
