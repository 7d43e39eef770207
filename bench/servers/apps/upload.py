"""Workload 4: POST a 1 MB body; the app reads all of it and answers with
the number of bytes it read (so a server that lost part of the body shows)."""


def application(environ, start_response):
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    got = 0
    while got < length:
        chunk = stream.read(min(65536, length - got))
        if not chunk:
            break
        got += len(chunk)
    status = "200 OK" if got == length else "400 Bad Request"
    body = str(got).encode()
    start_response(
        status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]
