"""The embedded worker: the Python half of a WSGI call made in-process.

In the embedded mode the hornbeam binary loads CPython and calls the app
from Go (package wsgiembed) instead of feeding a worker process over a
socket. Go holds the GIL only for these calls:

    load(spec, emit, threads, state_fd, versions_fd)
                                -> an App, once, on Python's main thread
    App.handle(environ)         -> the response, per request
    step(stream)                -> the next chunk of a streamed response
    stop(stream)                -> close() of a stream Go gives up on

The environ comes from Go as marshal data: the same keys and values as the
process mode (see wsgi/environ.go), as (VALUES, BODY, EXTRA) where VALUES
are those of the fixed _KEYS (copied with zip into a copy of a template
that holds the constant ones: cheaper than a whole dict from marshal) and
EXTRA a dict of the others. BODY is None, bytes (an io.BytesIO is made of
them) or the number of a descriptor to an unlinked temporary file, which
becomes wsgi.input and is closed after the request. The checks are the
process mode's own (_worker._check_headers).

handle() returns one bytes object for a response that is complete when the
app returns (a list, or an empty iterable), which Go sends without the GIL:

    b"R" + HEAD + b"\\r\\n\\r\\n" + BODY     HEAD = status [+ "\\r\\n" + name + ":" + value ...]
    b"L" + HEAD + b"\\r\\n\\r\\n" + BODY     the same, and Go adds the Content-Length
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

from . import _state, _wire
from ._worker import PRELOADED, FileWrapper, _check_headers, _content_length, _import_app, _mount

__all__ = ["App", "load", "step", "stop", "python_signal_handlers"]

_CRLF2 = b"\r\n\r\n"

# Encoded statuses and header lines (with whether the line is a
# Content-Length), by value: an app sends the same few again and again.
# Only checked values get here; both start over when full.
_STATUS_BYTES = {}
_LINES = {}
_CACHE_MAX = 4096


def _head(status, headers, parts):
    """Append the latin-1 HEAD of a status and headers to parts; return
    whether a Content-Length is among the headers. A value not seen yet is
    checked again here: the app may have changed the list since
    start_response checked it."""
    s = _STATUS_BYTES.get(status)
    if s is None:
        _check_headers(status, [])
        s = status.encode("latin-1")
        if len(_STATUS_BYTES) >= _CACHE_MAX:
            _STATUS_BYTES.clear()
        _STATUS_BYTES[status] = s
    parts.append(s)
    has_length = False
    for h in headers:
        line = _LINES.get(h)
        if line is None:
            _check_headers(status, [h])
            line = (("\r\n" + h[0] + ":" + h[1]).encode("latin-1"), h[0].lower() == "content-length")
            if len(_LINES) >= _CACHE_MAX:
                _LINES.clear()
            _LINES[h] = line
        parts.append(line[0])
        if line[1]:
            has_length = True
    return has_length


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
            _head(self.status, self.headers, parts)
            self.sent = True
        return parts

    def write(self, data):
        data = _as_bytes(data)
        parts = [b"W"]
        if not self.sent:
            if self.status is None:
                raise AssertionError("the application sent body bytes before calling start_response")
            _head(self.status, self.headers, parts)
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


# The environ's fixed keys, in the order of the values Go sends.
_KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "SERVER_PROTOCOL",
         "wsgi.url_scheme", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "REMOTE_PORT")

_BytesIO = io.BytesIO


class App:
    """The application and the per-request call."""

    def __init__(self, app, emit, threads=1):
        self.app = app
        self.emit = emit

        def early_hints(headers):  # a function, as in the process mode
            headers = list(headers)
            _check_headers("103 Early Hints", headers)
            parts = [b"H"]
            for name, value in headers:
                parts.append(("\r\n" + name + ":" + value).encode("latin-1"))
            emit(b"".join(parts))

        # What every environ starts as (a dict copy is the cheapest way).
        self.template = {
            "SCRIPT_NAME": "",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": threads > 1,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.early_hints": early_hints,
        }

    def handle(self, request):
        """Serve one request: (VALUES, BODY, EXTRA) from Go, where VALUES
        are the _KEYS' values, BODY is None, bytes or a descriptor, and
        EXTRA holds the other keys (HTTP_*, CONTENT_*)."""
        (method, path, query, uri, proto, scheme, sname, sport, raddr, rport), body, extra = request
        environ = self.template.copy()
        environ["REQUEST_METHOD"] = method
        environ["PATH_INFO"] = path
        environ["QUERY_STRING"] = query
        environ["RAW_URI"] = uri
        environ["REQUEST_URI"] = uri
        environ["SERVER_PROTOCOL"] = proto
        environ["wsgi.url_scheme"] = scheme
        environ["SERVER_NAME"] = sname
        environ["SERVER_PORT"] = sport
        environ["REMOTE_ADDR"] = raddr
        environ["REMOTE_PORT"] = rport
        environ.update(extra)
        if body is None:
            inp = _BytesIO()
        elif type(body) is bytes:
            inp = _BytesIO(body)
        else:
            inp = os.fdopen(body, "rb")
        environ["wsgi.input"] = inp
        r = _Response(self.emit)
        result = t = None
        streaming = False
        try:
            result = self.app(environ, r.start_response)
            t = type(result)
            if (t is list or t is tuple) and not r.sent and r.status is not None:
                # Everything is in memory: send it at once. b"L": Go adds
                # the Content-Length, unless the app gave one or it may have
                # no body (as the process mode: _worker._wants_length).
                status = r.status
                parts = [b"L"]
                has_length = _head(status, r.headers, parts)
                parts.append(_CRLF2)
                r.sent = True
                if has_length:
                    has_length = _content_length(r.headers) is not None
                for data in result:
                    if type(data) is bytes:
                        if data:
                            parts.append(data)
                    else:
                        has_length = True
                        if data:
                            parts.append(_as_bytes(data))
                if has_length or status[0] == "1" or status[:3] == "204" or status[:3] == "304":
                    parts[0] = b"R"
                return b"".join(parts)
            if t is list or t is tuple:
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
                    return b"".join(parts), _Stream(it, result, environ, None if type(body) is not int else inp)
            parts = r.head(b"R")  # an empty iterable: the head alone
            parts.append(_CRLF2)
            return b"".join(parts)
        except BaseException as e:  # SystemExit from an app too: fail the request, keep the process
            return b"E" + _failure(environ, e).encode("utf-8", "backslashreplace")
        finally:
            if not streaming:
                if t is not list and t is not tuple:
                    _close(result)
                if type(body) is int:
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


class ASGIApp:
    """What load() returns for an ASGI application: Go serves it with
    package asgi (the Python half is _asgi.Runner)."""

    kind = "asgi"

    def __init__(self, app, version):
        self.app = app
        self.version = version


def load(spec, emit, threads=1, state_fd=0, versions_fd=0, interface="auto", prefix=""):
    """Import the app named by spec ("module:callable") and wrap it. With a
    state_fd (the worker's end of its state socket to the server, fd 4 in
    the process mode) the hornbeam.state_* calls go to the server, and with
    a versions_fd (the shared change table) state_get is served from
    memory while a key is unchanged, as in a worker process; both are set up
    before the import, so module-level state calls work. interface is
    "wsgi", "asgi" or "auto" (an ASGI app is recognised by its coroutine
    function, see _asgi.is_asgi). With a prefix (--mount) a WSGI app sees
    it as SCRIPT_NAME (an ASGI app gets it from Go, as root_path)."""
    if state_fd > 0:
        from . import _state, _wire
        if versions_fd > 0:
            _state.map_versions(versions_fd)
        _state.use_server(_wire.CallConn(state_fd).call)
    app = PRELOADED.pop(spec, None)  # --preload: the zygote imported it
    if app is None:
        app = _import_app(spec)
    if interface != "wsgi":
        from ._asgi import is_asgi

        version = is_asgi(app)
        if version is None and interface == "asgi":
            version = "3"
        if version is not None:
            return ASGIApp(app, version)
    if prefix:
        app = _mount(app, prefix)
    return App(app, emit, threads)


def python_signal_handlers():
    """The signals for which the app installed a Python handler (at import,
    on the main thread): it replaced the server's handler for them and will
    never run, as the main thread does not run Python afterwards."""
    import signal
    out = []
    for sig in sorted(signal.valid_signals()):
        try:
            h = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
        if callable(h):
            out.append(signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(int(sig)))
    return ",".join(out)
