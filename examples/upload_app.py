"""Read request bodies: report the size and SHA-256 of what was uploaded.

Run it with:

    hornbeam --python /usr/bin/python3 --pythonpath examples upload_app:application

then:

    curl --data-binary @big.iso http://127.0.0.1:8000/upload
    curl -F file=@photo.jpg -F note=hi http://127.0.0.1:8000/upload/form

POST /upload hashes the raw body, read from wsgi.input in blocks (a body of
any size, sent with Content-Length or chunked). The answer is JSON:
{"length": N, "sha256": "...", "content_length": "N", "input": "<type>"}.

POST /upload/form parses a multipart/form-data body (without the deprecated
cgi module) and answers one entry per part: its field name, filename, size
and SHA-256.
"""

import hashlib
import json

BLOCK = 64 * 1024


def read_body(environ):
    """Yield the request body in blocks, never past CONTENT_LENGTH."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    remaining = int(length) if length.isdigit() else None
    while remaining is None or remaining > 0:
        block = stream.read(BLOCK if remaining is None else min(BLOCK, remaining))
        if not block:
            break
        if remaining is not None:
            remaining -= len(block)
        yield block


def parse_multipart(body, content_type):
    """Split a multipart/form-data body into (headers dict, content) parts."""
    boundary = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"').encode("latin-1")
    if not boundary:
        raise ValueError("multipart body without a boundary")
    parts = []
    # Each part follows CRLF "--boundary"; the last delimiter is "--boundary--".
    for chunk in (b"\r\n" + body).split(b"\r\n--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without a blank line after its headers")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("utf-8", "replace").partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts


def disposition_params(value):
    params = {}
    for item in value.split(";")[1:]:
        key, _, val = item.strip().partition("=")
        params[key.lower()] = val.strip('"')
    return params


def json_response(start_response, status, obj):
    body = json.dumps(obj).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    if method != "POST" and method != "PUT":
        start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "POST, PUT")])
        return [b"POST a body to /upload or a form to /upload/form\n"]

    if path == "/upload/form":
        body = b"".join(read_body(environ))
        try:
            parts = parse_multipart(body, environ.get("CONTENT_TYPE", ""))
        except ValueError as e:
            return json_response(start_response, "400 Bad Request", {"error": str(e)})
        fields = []
        for headers, content in parts:
            params = disposition_params(headers.get("content-disposition", ""))
            fields.append({
                "name": params.get("name"),
                "filename": params.get("filename"),
                "content_type": headers.get("content-type"),
                "length": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            })
        return json_response(start_response, "200 OK", {"parts": fields})

    digest = hashlib.sha256()
    length = 0
    for block in read_body(environ):
        digest.update(block)
        length += len(block)
    return json_response(start_response, "200 OK", {
        "length": length,
        "sha256": digest.hexdigest(),
        "content_length": environ.get("CONTENT_LENGTH"),
        "input": type(environ["wsgi.input"]).__name__,
    })
