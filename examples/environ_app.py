"""Echo the WSGI environ: the first app to run when checking a server.

Run it with:

    hornbeam --python /usr/bin/python3 --pythonpath examples environ_app:application

then:

    curl -H 'X-Custom: hi' 'http://127.0.0.1:8000/some/path?a=1'         # text
    curl 'http://127.0.0.1:8000/?format=json'                             # JSON

Text is one "KEY: value" line per environ key, sorted. JSON is an object of
the str values; the wsgi.* objects (streams, callables) are shown by their
type name. Any request body is read and its length reported as "body_length".
"""

import json


def _describe(value):
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, tuple):
        return list(value)
    return "<%s>" % type(value).__name__


def application(environ, start_response):
    body_length = len(environ["wsgi.input"].read())
    info = {key: _describe(value) for key, value in environ.items()}
    info["body_length"] = body_length

    wants_json = "format=json" in environ.get("QUERY_STRING", "").split("&") or (
        "application/json" in environ.get("HTTP_ACCEPT", "")
    )
    if wants_json:
        body = json.dumps(info, sort_keys=True, indent=1).encode("utf-8")
        content_type = "application/json"
    else:
        lines = ["%s: %s" % (key, info[key]) for key in sorted(info)]
        body = ("\n".join(lines) + "\n").encode("utf-8")
        content_type = "text/plain; charset=utf-8"

    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
