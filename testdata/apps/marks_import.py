"""Creates the file $HB_IMPORT_MARKER when imported."""
import os

open(os.environ["HB_IMPORT_MARKER"], "w").close()


def application(environ, start_response):
    start_response("200 OK", [])
    return [b""]
