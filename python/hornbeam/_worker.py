"""The worker processes: import the application once, then serve requests.

The hornbeam server starts one zygote,

    python -c "from hornbeam._worker import zygote; zygote(preload=False)" FD STATE_FD THREADS APP [PATH ...]

which forks a worker whenever the server asks (a Fork frame carrying the
worker's own FD, STATE_FD and output pipe). With --preload (preload=True)
the zygote imports the app before forking; otherwise each worker imports it.

FD is the zygote's, or a worker's, end of the request socket to the server and STATE_FD
its end of the state socket (see _wire.py), THREADS
the number of requests it runs at once, APP the "module:callable" to serve,
and PATH entries are put in front of sys.path. stdout and stderr are pipes
that the server copies to its error log, marked with this worker's pid.
"""

import faulthandler
import io
import marshal
import os
import queue
import re
import select
import signal
import socket
import stat
import sys
import threading
import traceback

from . import _wire as wire
from . import _state

# Exit status for "the application could not be imported": the server stops
# at start-up instead of restarting such a worker forever.
EXIT_IMPORT_FAILED = 3

# Body chunks from this size on are not copied into their frame (see flush).
_SPLIT_BODY = 16 << 10

_STATUS_RE = re.compile(r"[1-9][0-9][0-9] [^\r\n\0]*\Z")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE_RE = re.compile(r"[\r\n\0]")


class FileWrapper:
    """wsgi.file_wrapper: a file the server sends itself (sendfile) when it
    has a real descriptor, or reads in blocks otherwise."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        while True:
            block = read(self.blksize)
            if not block:
                return
            yield block


# Statuses and (name, value) header pairs already found valid: an app sends
# the same few again and again, and a set lookup is a fifth of the checks.
_VALID_STATUSES = set()
_VALID_HEADERS = set()
_VALID_MAX = 4096  # entries kept in each; both start over when full


def _check_headers(status, headers):
    if type(status) is not str or status not in _VALID_STATUSES:
        if type(status) is not str or not _STATUS_RE.match(status):
            raise ValueError("invalid status %r: want a str like '200 OK'" % (status,))
        if len(_VALID_STATUSES) >= _VALID_MAX:
            _VALID_STATUSES.clear()
        _VALID_STATUSES.add(status)
    if type(headers) is not list:
        raise TypeError("response headers must be a list of (name, value) tuples, got %s" % type(headers).__name__)
    for h in headers:
        # Types first: a str subclass equal to a valid str is not valid,
        # and a tuple holding a list cannot be looked up.
        if type(h) is tuple and len(h) == 2 and type(h[0]) is str and type(h[1]) is str and h in _VALID_HEADERS:
            continue
        if type(h) is not tuple or len(h) != 2:
            raise TypeError("response header %r is not a (name, value) tuple" % (h,))
        name, value = h
        if type(name) is not str or not _TOKEN_RE.match(name):
            raise ValueError("invalid response header name %r" % (name,))
        if type(value) is not str or _BAD_VALUE_RE.search(value):
            raise ValueError("invalid response header value for %s: %r (str without CR, LF or NUL)" % (name, value))
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("response header %s is not latin-1: %r" % (name, value)) from None
        if len(_VALID_HEADERS) >= _VALID_MAX:
            _VALID_HEADERS.clear()
        _VALID_HEADERS.add(h)


class Worker:
    def __init__(self, conn, app, threads):
        self.conn = conn
        self.app = app
        self.threads = threads
        self.calls = None  # the state socket (wire.CallConn)
        self.spec = None  # "module:callable"
        self.stopping = False
        self.hooks = None  # gunicorn.conf.py's hooks (_gunicorn_conf.Hooks), if any
        self.base = {
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": threads > 1,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
        }

    # -- serving -------------------------------------------------------------

    def serve(self):
        if self.threads > 1:
            return self._serve_threaded()
        read = self.conn.read_frame
        handle = self.handle
        # The hot loop: the server queues the next request while this one
        # runs, so read() usually finds it already in the buffer.
        while not self.stopping:
            f = read()
            if f is None:
                return
            typ = f[0]
            if typ == wire.REQUEST or typ == wire.REQUEST_FD:
                handle(f[1], f[2], f[3])
            elif typ == wire.SHUTDOWN:
                self.stopping = True

    def _serve_threaded(self):
        work = queue.SimpleQueue()

        def run():
            while True:
                f = work.get()
                if f is None:
                    return
                self.handle(f[1], f[2], f[3])

        pool = [threading.Thread(target=run, name="hornbeam-%d" % i, daemon=True) for i in range(self.threads)]
        for t in pool:
            t.start()

        # Read requests until Shutdown, then let the threads finish theirs.
        while True:
            f = self.conn.read_frame()
            if f is None or f[0] == wire.SHUTDOWN:
                break
            if f[0] == wire.REQUEST or f[0] == wire.REQUEST_FD:
                work.put(f)
        for _ in pool:
            work.put(None)
        for t in pool:
            t.join()

    def handle(self, rid, payload, fd):
        conn = self.conn
        frame = wire.frame
        environ = marshal.loads(payload)
        if fd is not None:
            inp = os.fdopen(fd, "rb")
        else:
            inp = io.BytesIO(environ.pop("hornbeam.body", b""))
        environ.update(self.base)
        environ["wsgi.input"] = inp
        out = []  # frames not yet sent
        resp = [None, None, False, False]  # status, headers, headers sent, out holds a split body

        def start_response(status, headers, exc_info=None):
            if exc_info:
                try:
                    if resp[2]:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif resp[0] is not None:
                raise AssertionError("start_response called a second time without exc_info")
            _check_headers(status, headers)
            resp[0] = status
            resp[1] = headers
            return write

        def send_body(data):
            if not resp[2]:
                if resp[0] is None:
                    raise AssertionError("the application sent body bytes before calling start_response")
                out.append(frame(wire.START, rid, marshal.dumps((resp[0], resp[1]), 2)))
                resp[2] = True
            if data:
                if type(data) is not bytes:
                    if isinstance(data, (bytearray, memoryview)):
                        data = bytes(data)
                    else:
                        raise TypeError("the response body must be bytes, got %s: %.60r" % (type(data).__name__, data))
                if len(data) < _SPLIT_BODY:
                    out.append(frame(wire.BODY, rid, data))
                else:  # header and payload apart: sent with sendmsg, never copied
                    resp[3] = True
                    for i in range(0, len(data), wire.MAX_PAYLOAD):
                        chunk = data[i:i + wire.MAX_PAYLOAD]
                        out.append(wire.HEADER.pack(len(chunk), wire.BODY, rid))
                        out.append(chunk)

        def write(data):
            send_body(data)
            flush()

        def flush():
            if out:
                if resp[3]:
                    conn.send_parts(out)
                    resp[3] = False
                else:
                    conn.send(b"".join(out))
                out.clear()

        def early_hints(headers):
            headers = list(headers)
            _check_headers("103 Early Hints", headers)
            conn.send(frame(wire.HINTS, rid, marshal.dumps(headers, 2)))

        environ["wsgi.early_hints"] = early_hints
        result = None
        hooks = self.hooks
        req = None
        try:
            if hooks is not None:
                req = hooks.pre_request(environ)
            result = self.app(environ, start_response)
            if type(result) is FileWrapper and self._send_file(rid, result, resp, out):
                pass
            elif type(result) in (list, tuple):
                # Everything is in memory: say how long it is, send it at once.
                if resp[0] is not None and not resp[2] and _wants_length(resp, result):
                    resp[1] = resp[1] + [("Content-Length", str(sum(map(len, result))))]
                for data in result:
                    send_body(data)
            else:
                for data in result:  # a generator: send each chunk as it comes
                    if data:
                        send_body(data)
                        flush()
            send_body(b"")
            out.append(frame(wire.END, rid))
            flush()
        except BaseException as e:  # SystemExit from an app too: fail the request, keep the worker
            out.clear()
            msg = "%s: %s" % (type(e).__name__, e)
            sys.stderr.write(
                "Error handling %s %s:\n%s"
                % (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), traceback.format_exc())
            )
            sys.stderr.flush()
            conn.send(frame(wire.ERROR, rid, marshal.dumps(msg, 2)))
        finally:
            try:
                if result is not None and hasattr(result, "close"):
                    result.close()
            except Exception:
                sys.stderr.write("Error closing the response iterable:\n" + traceback.format_exc())
            if fd is not None:
                inp.close()
            if hooks is not None:
                hooks.post_request(req, environ, resp[0], resp[1])

    def _send_file(self, rid, wrapper, resp, out):
        """Hand a wsgi.file_wrapper file to the server; False if it has no fd."""
        f = wrapper.filelike
        try:
            fd = f.fileno()
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            offset = f.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return False
        if resp[0] is None:
            raise AssertionError("the application returned a file before calling start_response")
        length = _content_length(resp[1])
        if length is None:
            length = max(os.fstat(fd).st_size - offset, 0)
            resp[1] = resp[1] + [("Content-Length", str(length))]
        out.append(wire.frame(wire.START, rid, marshal.dumps((resp[0], resp[1]), 2)))
        resp[2] = True
        out.append(wire.frame(wire.FILE, rid, marshal.dumps((offset, length), 2)))
        self.conn.send_fd(b"".join(out), fd)
        out.clear()
        return True


def _content_length(headers):
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _wants_length(resp, result):
    """Whether a list response may be given a Content-Length by the server."""
    status = resp[0]
    if status[0] == "1" or status.startswith(("204", "304")):
        return False
    for d in result:
        if type(d) is not bytes:
            return False
    return _content_length(resp[1]) is None


def _import_app(spec):
    """Import the app named by spec: "module:name", "module:name.attr", or,
    as gunicorn 21+, "module:factory()" or "module:factory(arg, key=value)"
    with literal arguments, called once per process. With SCRIPT_NAME in
    the environment the app is mounted under that prefix (see _mount)."""
    import ast

    module, _, expr = spec.partition(":")
    expr = expr.strip() or "application"
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise ImportError("cannot parse %r as a name or a call like create_app() (want MODULE:CALLABLE or MODULE:FACTORY(ARGS))" % expr) from None
    call = None
    if isinstance(node, ast.Call):
        call, node = node, node.func
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ImportError("%r: want a name (optionally dotted), or a call of one with literal arguments" % expr)
    names.append(node.id)
    names.reverse()
    args, kwargs = [], {}
    if call is not None:
        try:
            args = [ast.literal_eval(a) for a in call.args]
            for kw in call.keywords:
                if kw.arg is None:
                    raise ValueError("**")
                kwargs[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ImportError("%r: the factory's arguments must be Python literals (strings, numbers, True, False, None, and tuples, lists, dicts or sets of them)" % expr) from None
    __import__(module)
    obj = sys.modules[module]
    for part in names:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError("module %r has no attribute %r (check MODULE:CALLABLE)" % (module, ".".join(names))) from None
    if call is not None:
        if not callable(obj):
            raise TypeError("%s: %s is a %s, not a function to call" % (spec, ".".join(names), type(obj).__name__))
        obj = obj(*args, **kwargs)
        if obj is None:
            raise TypeError("%s returned None, not a WSGI application (does the factory return the app?)" % spec)
    if not callable(obj):
        raise TypeError("%s is a %s, not a WSGI callable" % (spec, type(obj).__name__))
    prefix = os.environ.get("SCRIPT_NAME", "").rstrip("/")
    if prefix:
        obj = _mount(obj, prefix)
    return obj


def _mount(app, prefix):
    """Serve app under prefix (the server's SCRIPT_NAME, as gunicorn reads
    it): a request for PREFIX/rest reaches the app with SCRIPT_NAME=PREFIX
    and PATH_INFO=/rest; any other path gets 404."""
    n = len(prefix)

    def mounted(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path[:n] != prefix or (len(path) > n and path[n] != "/"):
            body = ("Not Found: %s is outside SCRIPT_NAME %s\n" % (path, prefix)).encode("latin-1", "replace")
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
        environ["PATH_INFO"] = path[n:]
        return app(environ, start_response)

    mounted.__wrapped__ = app
    return mounted


# The app the hosted zygote imported, by spec, for _embed.load in the
# forked worker (a factory, "module:create_app()", is called once).
PRELOADED = {}


def _run_hosted(lib, payload, access_fd, proto):
    """Become an embedded worker, in a child of the hosted zygote: load the
    worker library, which starts Go's runtime in this process only now,
    after the fork, and give it this (main) thread; ctypes releases the GIL
    for the call. The worker finds its descriptors where every embedded
    worker has them (3 control, 4 state, 5 change table and 7 on the
    listeners, from the zygote; 6 the access log) and its configuration in
    the environment (the payload: NUL-separated KEY=VALUEs), and takes the
    app from PRELOADED."""
    import atexit
    import ctypes

    os.dup2(access_fd, 6)
    os.close(access_fd)
    for kv in marshal.loads(payload).split("\0"):
        key, _, value = kv.partition("=")
        os.environ[key] = value
    if os.environ.get("HORNBEAM_WORKER_USER"):  # -u/--user, -g/--group
        from . import _gunicorn_conf

        _gunicorn_conf.drop_privileges()
    if proto.app is not None:
        PRELOADED[proto.spec] = proto.app
    rc = ctypes.CDLL(lib).HornbeamWorker()
    if rc == 0:
        atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def _boot(import_app=True, hosted=False):
    """Start-up of the zygote: parse argv, set up sys.path, signals and the
    connection, and (with --preload) import the app, or exit with status 3
    (also for an ASGI app, which only hosted embedded workers serve; their
    zygote keeps fd 5 open for them)."""
    fd, state_fd, threads, spec = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    _pin(os.environ.pop("HORNBEAM_CPU", None))
    for p in reversed(sys.argv[5:]):
        sys.path.insert(0, os.path.abspath(p))
    faulthandler.enable()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop
    worker = Worker(wire.Conn(socket.socket(fileno=fd)), None, threads)
    worker.calls = wire.CallConn(state_fd)
    versions_fd = os.environ.pop("HORNBEAM_STATE_VERSIONS", None)
    if versions_fd is not None:
        _state.map_versions(os.dup(int(versions_fd)) if hosted else int(versions_fd))
    _state.use_server(worker.calls.call)  # module-level state calls work during import
    worker.spec = spec
    if import_app and spec:  # with --mount alone there is no app at the root
        worker.app = _load(spec, wsgi_only=not hosted)
    return worker


def _load(spec, wsgi_only=True):
    """Import the app, or exit with status 3 and the traceback (or the
    line saying how to run an ASGI app)."""
    try:
        app = _import_app(spec)
    except BaseException:
        traceback.print_exc()  # the server adds a hint, once, for a ModuleNotFoundError
        sys.stderr.flush()
        os._exit(EXIT_IMPORT_FAILED)
    if wsgi_only and _is_async(app):
        sys.stderr.write(
            "%s is an ASGI application, and the process worker mode serves WSGI only: run it with -k asgi "
            "(the embedded worker mode: build hornbeam-worker.so beside the hornbeam binary, see the README's quick start, "
            "or install the interpreter's shared libpython, on Debian: apt-get install libpython3.11)\n" % spec
        )
        sys.stderr.flush()
        os._exit(EXIT_IMPORT_FAILED)
    return app


def _is_async(app):
    """Whether app is an async callable (an ASGI app), without importing
    inspect: its code, or its class's __call__'s, is a coroutine's."""
    call = app.__call__ if isinstance(app, type) else getattr(type(app), "__call__", None)
    for f in (app, call):
        code = getattr(getattr(f, "__func__", f), "__code__", None)
        if code is not None and code.co_flags & 0x80:  # CO_COROUTINE
            return True
    return False


def _pin(cpu):
    """--cpu-affinity: run on this CPU only (threads started later inherit it)."""
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})


def _ready(conn):
    info = {"pid": os.getpid(), "python": sys.version.split()[0], "executable": sys.executable}
    conn.send(wire.frame(wire.READY, 0, marshal.dumps(info, 2)))


def zygote(preload, hosted=None):
    """Fork a worker whenever the server sends a Fork frame. With preload the
    app is imported here, once, and the workers share it copy-on-write;
    without, each worker imports it after the fork (a fork of this
    interpreter, which has the runtime imported, costs a few ms against
    40-50 ms for a new one). The zygote reaps the workers and reports each
    exit status in a ChildExit frame. With hosted (the path of the worker
    library) the workers are embedded workers: see _run_hosted."""
    proto = _boot(import_app=preload, hosted=hosted is not None)
    conn = proto.conn
    hooks = None
    if os.environ.get("HORNBEAM_GUNICORN_CONF"):  # gunicorn.conf.py's hooks
        from . import _gunicorn_conf

        hooks = _gunicorn_conf.worker_hooks()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
    signal.set_wakeup_fd(wake_w)
    _ready(conn)
    while True:
        readable, _, _ = select.select([conn.sock, wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 512)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                conn.send(wire.frame(wire.CHILD_EXIT, 0, marshal.dumps((pid, status), 2)))
                if hooks is not None:
                    hooks.child_exit(pid, status)
        if conn.sock not in readable:
            continue
        f = conn.read_frame()
        if f is None or f[0] == wire.SHUTDOWN:
            return
        if f[0] != (wire.FORK if hosted is None else wire.FORK_EMBEDDED):
            continue
        sock_fd, state_fd, out_fd = f[3][:3]
        access_fd = f[3][3] if hosted is not None else -1
        if hooks is not None:
            hooks.pre_fork()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(wake_r)
                os.close(wake_w)
                conn.sock.close()
                proto.calls.close()
                os.dup2(out_fd, 1)
                os.dup2(out_fd, 2)
                os.close(out_fd)
                # The worker's sockets take the zygote's numbers: the request
                # socket is fd 3 and the state socket fd 4 in every worker.
                os.dup2(sock_fd, 3)
                os.dup2(state_fd, 4)
                os.close(sock_fd)
                os.close(state_fd)
                if hosted is not None:
                    _run_hosted(hosted, f[2], access_fd, proto)  # never returns
                _pin(marshal.loads(f[2]))
                worker = Worker(wire.Conn(socket.socket(fileno=3)), proto.app, proto.threads)
                worker.calls = wire.CallConn(4)
                _state.use_server(worker.calls.call)
                if hooks is not None:
                    hooks.post_fork()
                    hooks.install_signals()
                if os.environ.get("HORNBEAM_WORKER_USER"):  # -u/--user, -g/--group
                    from . import _gunicorn_conf

                    _gunicorn_conf.drop_privileges()
                if worker.app is None:
                    worker.app = _load(proto.spec)
                if hooks is not None:
                    hooks.post_worker_init(worker.app)
                    worker.hooks = hooks
                _ready(worker.conn)
                worker.serve()
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                if hooks is not None:
                    hooks.worker_exit()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(sock_fd)
        os.close(state_fd)
        os.close(out_fd)
        if access_fd >= 0:
            os.close(access_fd)
        if hooks is not None:
            hooks.forked(pid)
        conn.send(wire.frame(wire.FORKED, f[1], marshal.dumps(pid, 2)))
