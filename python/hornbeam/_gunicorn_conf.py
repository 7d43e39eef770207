"""gunicorn.conf.py support: read a gunicorn configuration file, and call
its server hooks with stand-ins for gunicorn's objects.

The hornbeam command runs this file with the configured Python,

    python -c SOURCE dump CONFIG         print the file's settings as JSON
    python -c SOURCE hook CONFIG NAME    call one server-side hook (on_starting,
                                         when_ready, on_exit) with a stand-in server

and the process-mode workers (_worker.py) use worker_hooks() when the
server sets HORNBEAM_GUNICORN_CONF: the zygote execs the file once and
calls pre_fork and child_exit; each worker calls post_fork,
post_worker_init, pre_request, post_request and worker_exit.
HORNBEAM_GUNICORN_CFG holds the effective settings (gunicorn's names, as
JSON) that the stand-ins' cfg attributes show. Standard library only.
"""

import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import traceback
import types

# Hooks as gunicorn names them; the file's other functions, its modules and
# classes are helpers and not reported.
HOOKS = (
    "on_starting", "on_reload", "when_ready", "pre_fork", "post_fork", "post_worker_init",
    "worker_int", "worker_abort", "pre_exec", "pre_request", "post_request", "child_exit",
    "worker_exit", "nworkers_changed", "on_exit", "ssl_context",
)


def load(location):
    """Execute a configuration as gunicorn does: a file (FILE or file:FILE)
    as the module __config__, or python:MODULE imported. Returns its
    namespace."""
    if location.startswith("python:"):
        return vars(importlib.import_module(location[len("python:"):]))
    if location.startswith("file:"):
        location = location[len("file:"):]
    loader = importlib.machinery.SourceFileLoader("__config__", location)
    spec = importlib.util.spec_from_file_location("__config__", location, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["__config__"] = mod
    spec.loader.exec_module(mod)
    return vars(mod)


def _jsonable(v):
    """v as JSON, or {"__repr__": repr(v)} for what JSON cannot hold."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return int(v)  # IntEnum members (ssl.CERT_REQUIRED) as their number
    if isinstance(v, float):
        return v
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return {"__repr__": repr(v)}


def dump(location):
    """The settings of a configuration, for the server: {"settings": {name:
    value}, "hooks": [names of hook functions defined], "environ": {name:
    value set or changed by the file}, "unset": [names it removed],
    "sys_path": [entries it added]}. What the file prints goes to stderr."""
    env_before = dict(os.environ)
    path_before = list(sys.path)
    out = sys.stdout
    sys.stdout = sys.stderr
    try:
        ns = load(location)
    finally:
        sys.stdout = out
    environ = {k: v for k, v in os.environ.items() if env_before.get(k) != v}
    unset = sorted(k for k in env_before if k not in os.environ)
    sys_path = [os.path.abspath(p) for p in sys.path if p not in path_before]
    settings, hooks = {}, []
    for name, v in ns.items():
        if name.startswith("_"):
            continue
        if name in HOOKS and callable(v):
            hooks.append(name)
            continue
        if isinstance(v, (types.ModuleType, type)) or callable(v):
            continue  # imports and helpers, as gunicorn ignores them
        settings[name] = _jsonable(v)
    return {"settings": settings, "hooks": sorted(hooks), "environ": environ, "unset": unset, "sys_path": sys_path}


# -- stand-ins for gunicorn's objects ------------------------------------------


class Config:
    """server.cfg / worker.cfg: the effective settings under gunicorn's names
    (cfg.workers, cfg.bind, cfg.timeout, ...)."""

    def __init__(self, settings):
        self.__dict__.update(settings)
        self.settings = dict(settings)

    def __getattr__(self, name):
        raise AttributeError("cfg.%s: hornbeam's stand-in for gunicorn's config has no such setting" % name)


class Log:
    """server.log / worker.log: gunicorn's logger methods, written to stderr
    (the server's error log)."""

    def __init__(self, who):
        self.who = who

    def _write(self, level, msg, args):
        if args:
            try:
                msg = msg % args
            except (TypeError, ValueError):
                msg = "%s %r" % (msg, args)
        sys.stderr.write("[%s] %s\n" % (level, msg))
        sys.stderr.flush()

    def debug(self, msg, *args, **kw):
        self._write("DEBUG", msg, args)

    def info(self, msg, *args, **kw):
        self._write("INFO", msg, args)

    def warning(self, msg, *args, **kw):
        self._write("WARNING", msg, args)

    warn = warning

    def error(self, msg, *args, **kw):
        self._write("ERROR", msg, args)

    def critical(self, msg, *args, **kw):
        self._write("CRITICAL", msg, args)

    def exception(self, msg, *args, **kw):
        self._write("ERROR", msg, args)
        sys.stderr.write(traceback.format_exc())
        sys.stderr.flush()

    def log(self, lvl, msg, *args, **kw):
        self._write(str(lvl), msg, args)


class Server:
    """The arbiter as hooks see it: cfg, log, pid (hornbeam's), num_workers,
    proc_name."""

    def __init__(self, cfg, pid):
        self.cfg = cfg
        self.log = Log("hook")
        self.pid = pid
        self.num_workers = getattr(cfg, "workers", 1)
        self.proc_name = getattr(cfg, "proc_name", None) or "hornbeam"

    def __repr__(self):
        return "<hornbeam server %d>" % self.pid


class Worker:
    """A worker as hooks see it: pid, ppid, age (the order in which the
    zygote forked it), cfg, log, alive, booted, nr (requests so far) and
    wsgi (the app, once imported)."""

    def __init__(self, cfg, age, pid=None, ppid=None):
        self.cfg = cfg
        self.age = age
        self.pid = pid if pid is not None else os.getpid()
        self.ppid = ppid if ppid is not None else os.getppid()
        self.log = Log("worker %d" % self.pid)
        self.alive = True
        self.booted = False
        self.nr = 0
        self.wsgi = None
        self.tmp = None

    def __repr__(self):
        return "<hornbeam worker %d>" % self.pid


class Request:
    """pre_request's and post_request's req: method, uri, path, query,
    version, scheme and headers ((NAME, value) pairs, names upper case) of
    the request, from its environ."""

    def __init__(self, environ):
        e = environ
        self.method = e.get("REQUEST_METHOD", "")
        self.path = e.get("SCRIPT_NAME", "") + e.get("PATH_INFO", "")
        self.query = e.get("QUERY_STRING", "")
        self.uri = e.get("RAW_URI") or (self.path + ("?" + self.query if self.query else ""))
        proto = e.get("SERVER_PROTOCOL", "HTTP/1.1")
        try:
            major, minor = proto.split("/", 1)[1].split(".", 1)
            self.version = (int(major), int(minor))
        except (IndexError, ValueError):
            self.version = (2, 0) if proto == "HTTP/2" else (1, 1)
        self.scheme = e.get("wsgi.url_scheme", "http")
        self.remote_addr = e.get("REMOTE_ADDR")
        headers = []
        for k, v in e.items():
            if k.startswith("HTTP_"):
                headers.append((k[5:].replace("_", "-"), v))
            elif k in ("CONTENT_TYPE", "CONTENT_LENGTH") and v:
                headers.append((k.replace("_", "-"), v))
        self.headers = headers


class Response:
    """post_request's resp: status ("200 OK"), status_code and headers."""

    def __init__(self, status, headers):
        self.status = status or ""
        try:
            self.status_code = int(self.status.split(None, 1)[0])
        except (IndexError, ValueError):
            self.status_code = None
        self.headers = list(headers or ())


# -- the workers' side -----------------------------------------------------------


class Hooks:
    """The hooks a configuration defines, called from _worker.py with
    gunicorn's arguments. A hook that raises is logged; pre_request's
    exception fails the request (as in gunicorn)."""

    def __init__(self, ns, cfg):
        self.ns = ns
        self.cfg = cfg
        self.server = Server(cfg, os.getppid())  # the zygote's parent: hornbeam
        self.age = 0
        self.ages = {}  # pid -> age, for child_exit
        self.worker = None  # this process's Worker stand-in, after the fork
        self.pre = ns.get("pre_request")
        self.post = ns.get("post_request")

    def _call(self, name, *args):
        fn = self.ns.get(name)
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            sys.stderr.write("Exception in %s hook:\n%s" % (name, traceback.format_exc()))
            sys.stderr.flush()

    # In the zygote.
    def pre_fork(self):
        self.age += 1
        self._call("pre_fork", self.server, Worker(self.cfg, self.age, pid=0, ppid=os.getpid()))

    def forked(self, pid):
        self.ages[pid] = self.age

    def child_exit(self, pid, status):
        w = Worker(self.cfg, self.ages.pop(pid, 0), pid=pid, ppid=os.getpid())
        w.alive = False
        w.exitcode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
        self._call("child_exit", self.server, w)

    # In a worker.
    def post_fork(self):
        self.worker = Worker(self.cfg, self.age)
        self._call("post_fork", self.server, self.worker)

    def post_worker_init(self, app):
        self.worker.wsgi = app
        self.worker.booted = True
        self._call("post_worker_init", self.worker)

    def pre_request(self, environ):
        """Calls pre_request(worker, req); returns req, for post_request."""
        self.worker.nr += 1
        req = None
        if self.pre is not None or self.post is not None:
            req = Request(environ)
        if self.pre is not None:
            self.pre(self.worker, req)
        return req

    def post_request(self, req, environ, status, headers):
        if self.post is None:
            return
        if req is None:
            req = Request(environ)
        try:
            self.post(self.worker, req, environ, Response(status, headers))
        except Exception:
            sys.stderr.write("Exception in post_request hook:\n%s" % traceback.format_exc())
            sys.stderr.flush()

    def install_signals(self):
        """worker_int on SIGINT (the worker goes on: the server stops it,
        gracefully) and on SIGQUIT (then it exits, as gunicorn's does);
        worker_abort on the SIGABRT the server sends a worker it kills for
        a stuck request, then it exits. Only for the hooks defined: the
        signals' defaults stay otherwise."""
        import signal

        if self.ns.get("worker_int") is not None:
            signal.signal(signal.SIGINT, lambda *_: self._call("worker_int", self.worker))

            def on_quit(*_):
                self._call("worker_int", self.worker)
                sys.stderr.flush()
                os._exit(0)

            signal.signal(signal.SIGQUIT, on_quit)
        if self.ns.get("worker_abort") is not None:

            def on_abort(*_):
                self._call("worker_abort", self.worker)
                sys.stderr.flush()
                os._exit(1)

            signal.signal(signal.SIGABRT, on_abort)

    def worker_exit(self):
        if self.worker is not None:
            self.worker.alive = False
            self._call("worker_exit", self.server, self.worker)


def _cfg_from_env():
    raw = os.environ.get("HORNBEAM_GUNICORN_CFG")
    return Config(json.loads(raw) if raw else {})


def worker_hooks():
    """The configuration's hooks for the zygote and its workers, or None when
    there is no configuration (HORNBEAM_GUNICORN_CONF) or it defines none
    of theirs."""
    location = os.environ.get("HORNBEAM_GUNICORN_CONF")
    if not location:
        return None
    ns = load(location)
    names = ("pre_fork", "post_fork", "post_worker_init", "pre_request", "post_request", "worker_exit", "child_exit",
             "worker_int", "worker_abort")
    if not any(callable(ns.get(n)) for n in names):
        return None
    return Hooks(ns, _cfg_from_env())


def drop_privileges():
    """-u/--user and -g/--group: a worker switches to HORNBEAM_WORKER_USER
    ("UID:GID:GROUP,GROUP..."), after post_fork and before importing the
    app, as gunicorn's workers do."""
    spec = os.environ.get("HORNBEAM_WORKER_USER")
    if not spec:
        return
    uid, gid, groups = spec.split(":")
    gid = int(gid)
    os.setgroups([int(g) for g in groups.split(",") if g] or [gid])
    os.setgid(gid)
    os.setuid(int(uid))


def _main(argv):
    cmd, location = argv[0], argv[1]
    if cmd == "dump":
        out = dump(location)
        sys.stdout.write(json.dumps(out))
        sys.stdout.write("\n")
        return 0
    if cmd == "hook":
        for p in reversed(json.loads(os.environ.get("HORNBEAM_GUNICORN_PATH", "[]"))):
            sys.path.insert(0, os.path.abspath(p))
        ns = load(location)
        fn = ns.get(argv[2])
        if fn is None:
            return 0
        args = json.loads(argv[3]) if len(argv) > 3 else []  # nworkers_changed: new, old
        cfg = _cfg_from_env()
        fn(Server(cfg, int(os.environ.get("HORNBEAM_GUNICORN_PID", os.getppid()))), *args)
        return 0
    sys.stderr.write("usage: dump CONFIG | hook CONFIG NAME [ARGS_JSON]\n")
    return 2


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1:]))
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)
