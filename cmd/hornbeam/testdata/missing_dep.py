# An app that imports a module nobody has installed.
import no_such_module_xyz  # noqa: F401


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"never"]
