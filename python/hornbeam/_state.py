"""Shared state: the calls behind hornbeam.state_* and their two backends.

In a worker, every call is one StateCall frame to the server, which keeps the
store (see the Go package state); outside a worker (a plain script, the app's
unit tests) an in-process store with the same behaviour stands in.

On the wire a call is marshal data: (op, args...). Keys travel as str when
they are str (so Go sees the same key "page_views"), otherwise as bytes
b"\\0" + marshal.dumps(key, 2). Values travel as an int when they are an int
that fits 64 bits (the server keeps those as native counters), otherwise as
marshal.dumps(value, 2) bytes. The reply is (True, result) or
(False, error type name, message).

A worker keeps what state_get returned, in the form it came on the wire,
with the change counter of the key's slot in the server's change table (a
shared memory map, see the Go file versions_linux.go) as it was read before
the value. While that counter has not moved and the value's TTL has not run
out, the key is served from memory: one 4-byte read instead of a round trip.
Every hit decodes the value afresh, so the app never shares a mutable
object between calls.
"""

import marshal
import mmap
import os
import threading
import time
import zlib

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_VALUE_TYPES = (type(None), bool, int, float, str, bytes)
_KEY_ATOMS = (str, bytes, int)
_CONTAINERS = (list, tuple, set, frozenset)  # before this module defines its own set()
_MAX_DEPTH = 100


def _check_value(v, depth=0):
    t = type(v)
    if t in _VALUE_TYPES:
        return
    if depth > _MAX_DEPTH:
        raise ValueError("state value nested deeper than %d levels" % _MAX_DEPTH)
    if t in _CONTAINERS:
        for x in v:
            _check_value(x, depth + 1)
    elif t is dict:
        for k, x in v.items():
            _check_value(k, depth + 1)
            _check_value(x, depth + 1)
    else:
        raise TypeError(
            "cannot store a %s in hornbeam state: use None, bool, int, float, str, bytes, "
            "list, tuple, dict or set" % t.__name__
        )


def _wire_key(key):
    t = type(key)
    if t is str and not key.startswith("\0"):
        return key
    if t in _KEY_ATOMS or (t is tuple and all(type(k) in _KEY_ATOMS or type(k) is tuple for k in key)):
        if t is tuple:
            _check_key_tuple(key)
        return b"\0" + marshal.dumps(key, 2)
    raise TypeError("a hornbeam state key must be str, bytes, int or a tuple of those, not %s" % t.__name__)


def _check_key_tuple(key):
    for k in key:
        if type(k) is tuple:
            _check_key_tuple(k)
        elif type(k) not in _KEY_ATOMS:
            raise TypeError("a hornbeam state key tuple may hold str, bytes, int and tuples, not %s" % type(k).__name__)


def _user_key(k):
    if type(k) is bytes:
        return marshal.loads(k[1:])
    return k


def _wire_value(value):
    if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
        return value
    _check_value(value)
    return marshal.dumps(value, 2)


def _user_value(v):
    return marshal.loads(v) if type(v) is bytes else v


def _ttl(ttl):
    if ttl is None:
        return None
    if type(ttl) not in (int, float) or ttl != ttl:
        raise TypeError("ttl must be a number of seconds or None, got %r" % (ttl,))
    return float(ttl)


def _delta(delta):
    if type(delta) is not int:
        raise TypeError("the increment must be an int, got %s" % type(delta).__name__)
    if not _INT64_MIN <= delta <= _INT64_MAX:
        raise ValueError("the increment %d does not fit in 64 bits" % delta)
    return delta


_ERRORS = {"TypeError": TypeError, "ValueError": ValueError, "KeyError": KeyError, "OverflowError": OverflowError}


_VERSION_SLOTS = 1 << 16  # as versionSlots in versions_linux.go
# What one worker keeps: at most _CACHE_ENTRIES keys and _CACHE_BYTES of
# values (all are dropped when either is reached), none over
# _CACHE_VALUE_BYTES.
_CACHE_ENTRIES = 4096
_CACHE_BYTES = 8 << 20
_CACHE_VALUE_BYTES = 64 << 10
_versions = None  # the change table as a memoryview of uint32, or None


def map_versions(fd):
    """Map the server's state change table (descriptor fd, then closed)."""
    global _versions
    try:
        m = mmap.mmap(fd, _VERSION_SLOTS * 4, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    _versions = memoryview(m).cast("I")


class _Server:
    """State kept by the hornbeam server, reached over the worker's socket."""

    def __init__(self, call):
        self._call = call
        self._cache = {}  # wire key -> (slot counter, wire value, deadline or None)
        self._cache_bytes = 0  # of the bytes values kept (ints and None count 0)

    def __call__(self, *args):
        reply = marshal.loads(self._call(marshal.dumps(args, 2)))
        if reply[0] is True:
            return reply[1]
        raise _ERRORS.get(reply[1], RuntimeError)(reply[2])

    def get(self, key):
        """The wire value under wire key key, from memory when still current."""
        versions = _versions
        if versions is None:
            return self("get", key)
        # The same test as in get_multi, written out: a hit is the hot path
        # (about 0.25 us), and a shared helper would add half to it.
        e = self._cache.get(key)
        if e is not None and e[0] == versions[_slot(key)] and (e[2] is None or time.monotonic() < e[2]):
            return e[1]
        t0 = time.monotonic()
        value, version, ttl = self("getv", key)
        self._keep(key, value, version, ttl, t0)
        return value

    def get_multi(self, keys):
        """The wire values under wire keys keys; one round trip for those
        not current in memory."""
        versions = _versions
        if versions is None:
            return self("get_multi", keys)
        cache = self._cache
        out = [None] * len(keys)
        missing = []
        now = time.monotonic()
        for i, key in enumerate(keys):
            e = cache.get(key)
            if e is not None and e[0] == versions[_slot(key)] and (e[2] is None or now < e[2]):
                out[i] = e[1]
            else:
                missing.append(i)
        if missing:
            replies = self("get_multi_v", [keys[i] for i in missing])
            for i, (value, version, ttl) in zip(missing, replies):
                out[i] = value
                self._keep(keys[i], value, version, ttl, now)  # now is before the call
        return out

    def _keep(self, key, value, version, ttl, t0):
        """Keep a getv reply; t0 is when the call was sent, so the copy
        expires no later than the server's."""
        size = len(value) if type(value) is bytes else 0
        if size > _CACHE_VALUE_BYTES:
            return
        cache = self._cache
        if len(cache) >= _CACHE_ENTRIES or self._cache_bytes + size > _CACHE_BYTES:
            cache.clear()
            self._cache_bytes = 0
        cache[key] = (version, value, None if ttl is None else t0 + ttl)
        self._cache_bytes += size  # an approximation: a replaced entry is counted again


def _slot(key):
    """The change table slot of a wire key (as versions.slot in Go)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass") if type(key) is str else key) % _VERSION_SLOTS


class _Local:
    """An in-process store with the server's semantics, for use outside a worker."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data = {}  # wire key -> (value as on the wire, expiry or None)

    def _live(self, k, now):
        e = self._data.get(k)
        if e is not None and e[1] is not None and e[1] <= now:
            del self._data[k]
            return None
        return e

    def get(self, key):
        return self("get", key)

    def get_multi(self, keys):
        return self("get_multi", keys)

    def __call__(self, op, *args):
        now = time.monotonic()
        with self._lock:
            if op == "get":
                e = self._live(args[0], now)
                return None if e is None else e[0]
            if op == "get_multi":
                return [None if e is None else e[0] for e in (self._live(k, now) for k in args[0])]
            if op == "set":
                key, value, ttl = args
                self._data[key] = (value, None if ttl is None else now + ttl)
                return None
            if op == "delete":
                return self._data.pop(args[0], None) is not None and True
            if op == "incr":
                key, delta = args
                e = self._live(key, now)
                old = 0 if e is None else e[0]
                if type(old) is not int:
                    raise TypeError("the value of %r is not an integer" % (key,))
                new = old + delta
                if not _INT64_MIN <= new <= _INT64_MAX:
                    raise OverflowError("incrementing %r would overflow 64 bits" % (key,))
                self._data[key] = (new, None if e is None else e[1])
                return new
            if op == "keys":
                prefix = args[0]
                out = []
                for k in list(self._data):
                    if self._live(k, now) is None:
                        continue
                    if prefix is None or _str_key_has_prefix(k, prefix):
                        out.append(k)
                return sorted(out, key=lambda k: k.encode("utf-8", "surrogatepass") if type(k) is str else k)
            if op == "stats":
                return {"workers": [], "local": True}
            if op == "publish":
                return 0  # no server: no subscribers
        raise ValueError("unknown state operation %r" % (op,))


def _str_key_has_prefix(k, prefix):
    """Whether wire key k is a str key starting with prefix (str keys that
    start with NUL travel encoded, like non-str keys)."""
    if type(k) is str:
        return k.startswith(prefix)
    user = marshal.loads(k[1:])
    return type(user) is str and user.startswith(prefix)


_backend = _Local()


def use_server(call):
    """Route state calls to the server (called by the worker at start-up)."""
    global _backend
    _backend = _Server(call)


class _Forked:
    """The backend of a process forked from a worker (multiprocessing,
    os.fork): it shares the worker's state socket, where its calls would
    interleave with the worker's and break both, so it gets a clear error."""

    def __call__(self, *args):
        raise RuntimeError(
            "hornbeam state is not available in a process forked from a worker (pid %d); "
            "make the state calls in the worker and pass the results to the child" % os.getppid()
        )

    get = get_multi = __call__


def _after_fork_in_child():
    global _backend
    if type(_backend) is _Server:
        _backend = _Forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


def get(key):
    return _user_value(_backend.get(_wire_key(key)))


def get_multi(keys):
    keys = list(keys)
    values = _backend.get_multi([_wire_key(k) for k in keys])
    return {k: _user_value(v) for k, v in zip(keys, values)}


def set(key, value, ttl=None):
    _backend("set", _wire_key(key), _wire_value(value), _ttl(ttl))


def delete(key):
    return _backend("delete", _wire_key(key))


def incr(key, delta=1):
    return _backend("incr", _wire_key(key), _delta(delta))


def decr(key, delta=1):
    return _backend("incr", _wire_key(key), -_delta(delta))


def keys(prefix=None):
    if prefix is not None and type(prefix) is not str:
        raise TypeError("the key prefix must be a str, got %s" % type(prefix).__name__)
    return [_user_key(k) for k in _backend("keys", prefix)]


def stats():
    return _backend("stats")


def publish(topic, message):
    """message: str (a text message), bytes, or anything json.dumps takes
    (sent as JSON text, as the Erlang Hornbeam does)."""
    if type(topic) is not str:
        raise TypeError("a topic must be a str, got %s" % type(topic).__name__)
    if isinstance(message, str):
        text, data = True, message.encode("utf-8")
    elif isinstance(message, (bytes, bytearray, memoryview)):
        text, data = False, bytes(message)
    else:
        import json

        text, data = True, json.dumps(message, separators=(",", ":")).encode("utf-8")
    return _backend("publish", topic, text, data)
