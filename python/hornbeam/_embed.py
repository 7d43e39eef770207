"""The embedded worker: the Python half of a WSGI call made in-process.

In the embedded mode the hornbeam binary loads CPython and calls the app
from Go (package wsgiembed) instead of feeding a worker process over a
socket. Go holds the GIL only for these calls:

    load(spec, emit, threads)   -> an App, once, on Python's main thread
    App.handle(environ)         -> the response, per request
    step(stream)                -> the next chunk of a streamed response
    stop(stream)                -> close() of a stream Go gives up on

The environ comes from Go as marshal data (the same keys and values as the
process mode, see wsgi/environ.go), with the body under "hornbeam.body":
bytes (an io.BytesIO is made of them) or the number of a descriptor to an
unlinked temporary file, which becomes wsgi.input and is closed after the
request. The checks are the process mode's own (_worker._check_headers).

handle() returns one bytes object for a response that is complete when the
app returns (a list, or an empty iterable), which Go sends without the GIL:

    b"R" + HEAD + b"\\r\\n\\r\\n" + BODY     HEAD = status [+ "\\r\\n" + name + ":" + value ...]
    b"E" + summary + b"\\0" + traceback       the app failed before its response started (500)

HEAD is latin-1 (the checks allow nothing else, and no CR or LF inside a
line); it is empty when write() already sent it. For a generator, handle()
returns (b"S" + HEAD + b"\\r\\n\\r\\n" + FIRST_CHUNK, stream) and Go calls
step(stream) for each next non-empty chunk (bytes), until it returns None
(the end) or a str (an error after the response started: Go cuts the
connection). For wsgi.file_wrapper over a regular file it returns
(b"F" + HEAD, fd, offset, length): Go owns the descriptor (a dup) and sends
the file. close() of the app's iterable has been called when handle() or
step() return anything but a stream.

write() and wsgi.early_hints() reach Go at once through emit(payload), a
function Go made: b"W" + HEAD + b"\\r\\n\\r\\n" + DATA, or b"H" + HEADERS.
"""

import io
import os
import stat
import sys
import traceback

from ._worker import FileWrapper, _check_headers, _content_length, _import_app, _wants_length

__all__ = ["App", "load", "step", "stop"]

_CRLF2 = b"\r\n\r\n"

# Encoded statuses and header lines, by value: an app sends the same few
# again and again. Only checked values get here; both start over when full.
_STATUS_BYTES = {}
_LINE_BYTES = {}
_CACHE_MAX = 4096


def _head_parts(status, headers, parts):
    """Append the latin-1 bytes of a checked status and headers to parts."""
    s = _STATUS_BYTES.get(status)
    if s is None or type(status) is not str:
        s = status.encode("latin-1")
        if len(_STATUS_BYTES) >= _CACHE_MAX:
            _STATUS_BYTES.clear()
        _STATUS_BYTES[status] = s
    parts.append(s)
    for h in headers:
        line = _LINE_BYTES.get(h) if type(h[0]) is str and type(h[1]) is str else None
        if line is None:
            line = ("\r\n" + h[0] + ":" + h[1]).encode("latin-1")
            if type(h[0]) is str and type(h[1]) is str:
                if len(_LINE_BYTES) >= _CACHE_MAX:
                    _LINE_BYTES.clear()
                _LINE_BYTES[h] = line
        parts.append(line)
    return parts


def _as_bytes(data):
    if type(data) is bytes:
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError("the response body must be bytes, got %s: %.60r" % (type(data).__name__, data))


def _failure(environ, e):
    """An exception being handled, as Go logs it: summary, NUL, traceback."""
    summary = "%s: %s" % (type(e).__name__, e)
    text = "Error handling %s %s:\n%s" % (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), traceback.format_exc())
    return summary.replace("\0", "\\0") + "\0" + text


def _close(result):
    try:
        if result is not None and hasattr(result, "close"):
            result.close()
    except Exception:
        sys.stderr.write("Error closing the response iterable:\n" + traceback.format_exc())
        sys.stderr.flush()


class _Response:
    """One request's start_response and write, with the process mode's
    rules: a second start_response needs exc_info, which re-raises once
    the headers are sent."""

    __slots__ = ("status", "headers", "sent", "emit")

    def __init__(self, emit):
        self.status = None
        self.headers = None
        self.sent = False
        self.emit = emit

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        _check_headers(status, headers)
        self.status = status
        self.headers = headers
        return self.write

    def head(self, kind):
        """[kind, HEAD...] for the next output, marking the head sent."""
        parts = [kind]
        if not self.sent:
            if self.status is None:
                raise AssertionError("the application sent body bytes before calling start_response")
            _head_parts(self.status, self.headers, parts)
            self.sent = True
        return parts

    def write(self, data):
        data = _as_bytes(data)
        parts = [b"W"]
        if not self.sent:
            if self.status is None:
                raise AssertionError("the application sent body bytes before calling start_response")
            _head_parts(self.status, self.headers, parts)
        parts.append(_CRLF2)
        parts.append(data)
        self.emit(b"".join(parts))  # raises if it cannot be sent from this thread
        self.sent = True


class _Stream:
    """A response Go streams with step(): the iterator, the app's iterable
    (to close) and the request's labels for errors."""

    __slots__ = ("it", "result", "environ", "inp")

    def __init__(self, it, result, environ, inp):
        self.it = it
        self.result = result
        self.environ = environ
        self.inp = inp  # a spooled body's file, closed at the end

    def close(self):
        _close(self.result)
        if self.inp is not None:
            self.inp.close()


def step(stream):
    """The next non-empty chunk of a stream; None at its end, or a str (the
    error with its traceback) if it failed. close() is called at the end."""
    try:
        for data in stream.it:
            if data:
                return _as_bytes(data)
    except BaseException as e:  # SystemExit too: the request fails, not the process
        msg = _failure(stream.environ, e)
        stream.close()
        return msg
    stream.close()
    return None


def stop(stream):
    """close() for a stream Go stops reading (the client went away)."""
    stream.close()


class App:
    """The application and the per-request call."""

    def __init__(self, app, emit, threads=1):
        self.app = app
        self.emit = emit
        self.base = {
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": threads > 1,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.early_hints": self.early_hints,
        }

    def early_hints(self, headers):
        headers = list(headers)
        _check_headers("103 Early Hints", headers)
        parts = [b"H"]
        for name, value in headers:
            parts.append(("\r\n" + name + ":" + value).encode("latin-1"))
        self.emit(b"".join(parts))

    def handle(self, environ):
        body = environ.pop("hornbeam.body", b"")
        inp = io.BytesIO(body) if type(body) is bytes else os.fdopen(body, "rb")
        environ.update(self.base)
        environ["wsgi.input"] = inp
        r = _Response(self.emit)
        result = None
        streaming = False
        try:
            result = self.app(environ, r.start_response)
            t = type(result)
            if t is list or t is tuple:
                # Everything is in memory: say how long it is, send it at once.
                if r.status is not None and not r.sent and _wants_length([r.status, r.headers], result):
                    r.headers = r.headers + [("Content-Length", str(sum(map(len, result))))]
                parts = r.head(b"R")
                parts.append(_CRLF2)
                for data in result:
                    if data:
                        parts.append(_as_bytes(data))
                return b"".join(parts)
            if t is FileWrapper:
                f = self._file(r, result)
                if f is not None:
                    return f
            it = iter(result)
            for data in it:
                if data:
                    parts = r.head(b"S")
                    parts.append(_CRLF2)
                    parts.append(_as_bytes(data))
                    streaming = True
                    return b"".join(parts), _Stream(it, result, environ, None if type(body) is bytes else inp)
            parts = r.head(b"R")  # an empty iterable: the head alone
            parts.append(_CRLF2)
            return b"".join(parts)
        except BaseException as e:  # SystemExit from an app too: fail the request, keep the process
            return b"E" + _failure(environ, e).encode("utf-8", "backslashreplace")
        finally:
            if not streaming:
                _close(result)
                if type(body) is not bytes:
                    inp.close()

    def _file(self, r, wrapper):
        """(b"F" + HEAD, fd, offset, length) for a regular file with a
        descriptor, else None (then it is iterated in blocks)."""
        f = wrapper.filelike
        try:
            fd = f.fileno()
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            offset = f.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None
        if r.status is None:
            raise AssertionError("the application returned a file before calling start_response")
        length = _content_length(r.headers) if not r.sent else None
        if length is None:
            length = max(st.st_size - offset, 0)
            if not r.sent:
                r.headers = r.headers + [("Content-Length", str(length))]
        parts = r.head(b"F")
        return b"".join(parts), os.dup(fd), offset, length


def load(spec, emit, threads=1):
    """Import the app named by spec ("module:callable") and wrap it."""
    return App(_import_app(spec), emit, threads)
