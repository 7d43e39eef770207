"""Echoes the WSGI environ as JSON (with the wsgi.* objects described)."""
import json


def application(environ, start_response):
    out = {}
    for k, v in environ.items():
        if isinstance(v, str):
            out[k] = v
        elif k == "wsgi.version":
            out[k] = list(v)
        elif isinstance(v, bool):
            out[k] = v
        else:
            out[k] = type(v).__name__ if not callable(v) else "callable"
    body = json.dumps(out, sort_keys=True).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
