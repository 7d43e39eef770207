"""Errors and logging: what a client sees, and what lands in the error log.

Run it with:

    hornbeam --python /usr/bin/python3 --pythonpath examples error_app:application

Routes:

    GET /bad-request     400 with an explanation (a client error, handled by the app)
    GET /boom            raises: the client gets a bare 500, the server's error
                         log gets the Python traceback
    GET /boom-midway     starts a streamed response, then raises: the server cuts
                         the connection so the client cannot mistake the
                         truncated body for a whole one
    GET /errors?msg=M    writes M to wsgi.errors and prints it to stdout: both show
                         in the server's error log, marked "[worker <pid>]";
                         the response body is the worker's pid
"""

import os
import sys
from urllib.parse import parse_qs


class BoomError(RuntimeError):
    pass


def text(start_response, status, message):
    body = (message + "\n").encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def streamed(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first part of the response\n"
    raise BoomError("failed after the response started")


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))

    if path == "/bad-request":
        return text(start_response, "400 Bad Request", "bad request: the 'name' parameter is required")

    if path == "/boom":
        raise BoomError("boom: the database is on fire")

    if path == "/boom-midway":
        return streamed(start_response)

    if path == "/errors":
        msg = query.get("msg", ["something happened"])[0]
        errors = environ["wsgi.errors"]
        errors.write("wsgi.errors: %s\n" % msg)
        errors.flush()
        print("stdout: %s" % msg)
        sys.stdout.flush()
        return text(start_response, "200 OK", str(os.getpid()))

    return text(start_response, "404 Not Found", "no route for %s" % path)
