"""Workloads 1, 5 and 6: the 13-byte hello world."""

BODY = b"Hello, World!"


def application(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]
