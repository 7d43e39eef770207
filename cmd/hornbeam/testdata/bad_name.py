# An app whose import fails on a name a module does not have: an
# ImportError, not a ModuleNotFoundError (no hint about --python).
from os import no_such_name_xyz  # noqa: F401


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"never"]
