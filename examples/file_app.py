"""Serve files with wsgi.file_wrapper, which hornbeam sends with sendfile.

Run it with:

    FILE_APP_ROOT=/srv/files hornbeam --python /usr/bin/python3 --pythonpath examples file_app:application

then:

    curl -O http://127.0.0.1:8000/files/report.pdf

GET /files/<name> sends the file <name> of the directory FILE_APP_ROOT (the
current directory when unset), with its Content-Type and Content-Length.
Names are single path components: "../" and subdirectories are refused.
"""

import mimetypes
import os

ROOT = os.path.realpath(os.environ.get("FILE_APP_ROOT", "."))


def not_found(start_response, why):
    body = ("Not Found: %s\n" % why).encode("utf-8")
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def read_blocks(f, size=64 * 1024):
    with f:
        while True:
            block = f.read(size)
            if not block:
                return
            yield block


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/files/"):
        return not_found(start_response, "try /files/<name>")
    # PATH_INFO is a "native string": the URL's bytes as latin-1.
    name = path[len("/files/"):].encode("latin-1").decode("utf-8", "replace")
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        return not_found(start_response, "bad file name")
    full = os.path.join(ROOT, name)
    if os.path.dirname(os.path.realpath(full)) != ROOT:  # a symlink out of ROOT
        return not_found(start_response, "bad file name")
    try:
        f = open(full, "rb")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return not_found(start_response, name)

    size = os.fstat(f.fileno()).st_size
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(size))])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(f, 64 * 1024)
    return read_blocks(f)  # a server without wsgi.file_wrapper
