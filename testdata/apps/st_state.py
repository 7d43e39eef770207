"""Routes and checks for the shared-state tests (state_test.go).

The checks in CASES and TYPE_ERRORS use only the public hornbeam API, so the
same code runs in a worker (against the server's store) and in a plain
Python process (against the in-process store); the Go test expects the same
results from both.
"""

import collections
import json
import os
import time
import urllib.parse

import hornbeam
import hornbeam_erlang
from hornbeam import (
    pool_stats, state_decr, state_delete, state_get, state_get_multi, state_incr,
    state_keys, state_set,
)


# -- strict comparison --------------------------------------------------------

def canon(x):
    """A form of x in which every nested type, float sign and dict order shows."""
    t = type(x)
    if t in (list, tuple):
        return (t.__name__, tuple(canon(e) for e in x))
    if t in (set, frozenset):
        return (t.__name__, tuple(sorted(repr(canon(e)) for e in x)))
    if t is dict:
        return ("dict", tuple((canon(k), canon(v)) for k, v in x.items()))
    return (t.__name__, repr(x))


def same(a, b):
    return type(a) is type(b) and a == b and canon(a) == canon(b)


# -- type round trip ----------------------------------------------------------

VALUES = [
    None, True, False,
    0, -1, 1, 2**63 - 1, -2**63, 2**63, -2**63 - 1, 2**100, -2**70,
    1.5, -0.0, float("inf"), float("-inf"), 1e308, 5e-324,
    "", "héllo", "日本語 🎉", "\0starts with NUL", "\ud800 lone surrogate",
    b"", b"\x00\xff", bytes(range(256)),
    [], [1, [2]], (), (1, "a"), {}, {"a": {"b": [1, (2, 3)]}}, set(), {1, 2},
    frozenset(), frozenset({"a", b"a"}), {(1, "a"), (2, b"b")},
    [None, True, 1, 1.0, "1", b"1", (), [], {}, set()],
    [True, 1, 1.0], (False, 0, 0.0),
    {1: "int key", "k": "str key", b"k": "bytes key", (1, 2): "tuple key",
     None: "none key", 2.5: "float key", frozenset({1}): "frozenset key"},
    ((), ((),), [[[]]], {"e": {}}),
    {"deep": [[[[[[[[[[{"x": ({1, 2}, frozenset({(3,)}))}]]]]]]]]]]},
    {"z": 1, "a": 2, "m": 3},
    ["x" * 100000, b"y" * 100000, list(range(1000))],
]


def key_forms(i):
    """The same slot under each key type: str, bytes, int and tuple."""
    return [f"rt:{i}", b"rt:%d" % i, 100000 + i, ("rt", i, b"\x00", (i, "x"))]


# Keys that must not collide with each other: each stores its own repr.
DISTINCT_KEYS = [
    1, -1, 2**100, "1", b"1", (1,), ((1,),), "", b"", (), "\0", b"\0", "\0x", b"\0x",
    ("a", (b"b", 3)), ("a", b"b", 3), "a", b"a", ("a",),
]


def roundtrip_set():
    n = 0
    for i, v in enumerate(VALUES):
        for k in key_forms(i):
            state_set(k, v)
            n += 1
    for k in DISTINCT_KEYS:
        state_set(k, repr(k))
        n += 1
    return n


def roundtrip_check():
    failures, n = [], 0
    for i, v in enumerate(VALUES):
        for k in key_forms(i):
            x = state_get(k)
            n += 1
            if not same(x, v):
                failures.append("key %r: stored %.200r (%s), got %.200r (%s)" % (k, v, type(v).__name__, x, type(x).__name__))
    for k in DISTINCT_KEYS:
        x = state_get(k)
        n += 1
        if x != repr(k):
            failures.append("key %r: got %.200r" % (k, x))
    return failures, n


# -- values that must be refused ----------------------------------------------

class MyDict(dict):
    pass


class MyInt(int):
    pass


class MyStr(str):
    pass


class Hashable:
    pass


Point = collections.namedtuple("Point", "x y")

# case -> (value, the type name the error must mention)
TYPE_ERRORS = {
    "object": (lambda: object(), "object"),
    "bytearray": (lambda: bytearray(b"x"), "bytearray"),
    "dict_subclass": (lambda: MyDict(a=1), "MyDict"),
    "ordered_dict": (lambda: collections.OrderedDict(a=1), "OrderedDict"),
    "int_subclass": (lambda: MyInt(3), "MyInt"),
    "str_subclass": (lambda: MyStr("s"), "MyStr"),
    "namedtuple": (lambda: Point(1, 2), "Point"),
    "complex": (lambda: 1j, "complex"),
    "ellipsis": (lambda: ..., "ellipsis"),
    "memoryview": (lambda: memoryview(b"x"), "memoryview"),
    "function": (lambda: len, "builtin_function_or_method"),
    "object_deep_in_list": (lambda: [1, [2, [3, {"k": (4, object())}]]], "object"),
    "bytearray_deep_in_list": (lambda: [[[b"ok", bytearray()]]], "bytearray"),
    "object_in_set": (lambda: {1, Hashable()}, "Hashable"),
    "object_as_dict_key": (lambda: {"a": {Hashable(): 1}}, "Hashable"),
    "dict_subclass_in_tuple": (lambda: (1, (2, MyDict())), "MyDict"),
}


def type_error_case(name):
    make, _ = TYPE_ERRORS[name]
    key = ("te", name)
    state_set(key, "known")
    out = {"exc": None, "msg": ""}
    try:
        state_set(key, make())
    except Exception as e:
        out = {"exc": type(e).__name__, "msg": str(e)}
    out["after"] = repr(state_get(key))
    return out


# -- API behaviour: each case returns a value the Go test knows ---------------

def _exc(f, *args):
    try:
        return ("ok", f(*args))
    except Exception as e:
        return type(e).__name__


def case_decr():
    state_delete("c:d")
    return [state_decr("c:d"), state_decr("c:d", 5), state_incr("c:d", 10), state_decr("c:d", -2), state_get("c:d")]


def case_delete():
    state_set("d:k", "v")
    state_set(("d", 2), [1])
    return [state_delete("d:k"), state_delete("d:k"), state_get("d:k"), state_delete("d:never"),
            state_delete(("d", 2)), state_delete(("d", 2))]


def case_get_multi():
    state_set("gm:a", 1)
    state_set(b"gm:b", "two")
    state_set(("gm", 3), [3])
    return state_get_multi(["gm:a", b"gm:b", ("gm", 3), "gm:missing", 404404, ("gm", "missing")])


def case_keys_prefix():
    for k in ["kp:user:2", "kp:user:1", "kp:other", b"kp:user:bytes", ("kp:user:", 1), 9001]:
        state_set(k, 0)
    return [state_keys("kp:user:"), state_keys("kp:nothing"), _exc(state_keys, b"kp:")]


KEYS_ALL = ["ka:s", b"ka:b", ("ka", 1, b"x"), 777777, -777777, ("ka", ("nested", 2)), "\0ka"]


def case_keys_all():
    for k in KEYS_ALL:
        state_set(k, 1)
    got = [k for k in state_keys() if k in KEYS_ALL]
    return sorted((type(k).__name__, repr(k)) for k in got)


def case_keys_empty_prefix():
    # "" is a prefix like any other: only str keys match it.
    mine = ["ke:s", b"ke:b", ("ke", 1), 31337]
    for k in mine:
        state_set(k, 1)
    return sorted((type(k).__name__, repr(k)) for k in state_keys("") if k in mine)


def case_keys_nul_prefix():
    # A str key that starts with NUL is still a str key.
    state_set("\0kn", 1)
    state_set(b"\0kn", 1)
    return state_keys("\0kn")


def case_aliases():
    same_objects = [
        m.__dict__[short] is hornbeam.__dict__["state_" + short]
        for m in (hornbeam, hornbeam_erlang)
        for short in ("get", "set", "delete", "incr", "decr")
    ]
    erl_is_hornbeam = [
        getattr(hornbeam_erlang, n) is getattr(hornbeam, n)
        for n in ("state_get", "state_set", "state_delete", "state_incr", "state_decr",
                  "state_get_multi", "state_keys", "pool_stats")
    ]
    hornbeam_erlang.set("al", 1)
    used = [hornbeam.incr("al"), hornbeam_erlang.incr("al", 3), hornbeam.decr("al"), hornbeam_erlang.decr("al", 2),
            hornbeam.get("al"), hornbeam_erlang.get("al"), hornbeam_erlang.delete("al"), hornbeam.delete("al")]
    return [all(same_objects), all(erl_is_hornbeam), used]


def case_incr_errors():
    out = []
    for key, value, delta in [
        ("ie:str", "abc", 1),
        ("ie:float", 1.5, 1),
        ("ie:big", 2**100, 1),
        ("ie:list", [1], 1),
        ("ie:max", 2**63 - 1, 1),
        ("ie:min", -2**63, -1),
        ("ie:fdelta", 5, 1.5),
        ("ie:bdelta", 5, True),
        ("ie:hugedelta", 5, 2**64),
    ]:
        state_set(key, value)
        out.append((key, _exc(state_incr, key, delta), same(state_get(key), value)))
    return out


def case_bad_keys():
    return [(repr(k), _exc(state_set, k, 1)) for k in
            [1.5, None, True, [1], ("a", 1.5), ("a", [1]), ("a", True), frozenset({1}), bytearray(b"k"), MyStr("k")]]


def case_ttl_edges():
    state_set("tz", "v", ttl=0)
    state_set("tneg", "v", ttl=-1)
    state_set("tlong", "v", ttl=3600)
    state_set("tint", "v", ttl=5)
    return [state_get("tz"), state_get("tneg"), state_get("tlong"), state_get("tint"),
            _exc(state_set, "tbad", "v", "5"), _exc(state_set, "tnan", "v", float("nan")), state_get("tbad")]


CASES = {name[5:]: f for name, f in sorted(globals().items()) if name.startswith("case_")}


# -- the WSGI app ---------------------------------------------------------------

def _respond(start_response, body, status="200 OK"):
    if not isinstance(body, str):
        body = json.dumps(body)
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode("utf-8", "surrogatepass")]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()}
    pid = os.getpid()
    if path == "/get":
        v = state_get(q["key"])
        return _respond(start_response, {"pid": pid, "type": type(v).__name__, "repr": repr(v)})
    if path == "/cached":
        # Whether this worker serves the key's state_get from memory: five
        # more gets after one, counting the round trips to the server (a
        # test of the worker's cache, so it looks inside).
        from hornbeam import _state
        backend = _state._backend
        state_get(q["key"])
        trips = []
        call = backend._call
        backend._call = lambda payload: trips.append(1) or call(payload)
        try:
            for _ in range(5):
                state_get(q["key"])
        finally:
            backend._call = call
        return _respond(start_response, {"pid": pid, "repr": repr(not trips)})
    if path == "/fork_state":
        # A child forked by the app must get a clear error from state calls
        # (it shares the worker's state socket), and the worker goes on.
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                state_get("fork:key")
                msg = "no error"
            except Exception as e:
                msg = "%s: %s" % (type(e).__name__, e)
            os.write(w, msg.encode())
            os._exit(0)
        os.close(w)
        os.waitpid(child, 0)
        msg = os.read(r, 4096).decode()
        os.close(r)
        return _respond(start_response, {"pid": pid, "repr": msg, "last": state_incr("fork:after")})
    if path == "/multi":
        # state_get_multi twice; "last" is how many round trips the second
        # call took (the worker's cache, so it looks inside).
        from hornbeam import _state
        from hornbeam import state_get_multi
        keys = q["keys"].split(",")
        state_get_multi(keys)
        backend = _state._backend
        trips = []
        call = backend._call
        backend._call = lambda payload: trips.append(1) or call(payload)
        try:
            got = state_get_multi(keys)
        finally:
            backend._call = call
        return _respond(start_response, {"pid": pid, "repr": repr(sorted(got.items())), "last": len(trips)})
    if path == "/cache_bound":
        # Reading 12 MB of distinct values must not keep more than the
        # worker cache's 8 MiB.
        from hornbeam import _state
        for i in range(200):
            state_set("bound:%d" % i, b"x" * 60000)
        for i in range(200):
            state_get("bound:%d" % i)
        kept = sum(len(e[1]) for e in _state._backend._cache.values() if type(e[1]) is bytes)
        return _respond(start_response, {"pid": pid, "repr": repr(kept)})
    if path == "/mutate":
        # Changing what state_get returned must not change the next result.
        state_set(q["key"], [1, 2])
        state_get(q["key"])
        v = state_get(q["key"])
        v.append("changed by the app")
        return _respond(start_response, {"pid": pid, "repr": repr(state_get(q["key"]))})
    if path == "/set":
        ttl = float(q["ttl"]) if "ttl" in q else None
        state_set(q["key"], q["value"], ttl=ttl)
        return _respond(start_response, {"pid": pid})
    if path == "/ttl_incr":
        # A counter with a TTL: incrementing it must keep the TTL.
        state_set(q["key"], 5, ttl=float(q["ttl"]))
        return _respond(start_response, {"pid": pid, "after_incr": state_incr(q["key"])})
    if path == "/ttl_reset":
        # Setting again without a ttl must drop the old TTL.
        state_set(q["key"], "old", ttl=float(q["ttl"]))
        state_set(q["key"], "new")
        return _respond(start_response, {"pid": pid})
    if path == "/incr":
        key, n = q["key"], int(q.get("n", "1"))
        last = None
        for _ in range(n):
            last = state_incr(key)
        return _respond(start_response, {"pid": pid, "last": last})
    if path == "/big":
        # A value of n bytes: over --state-max-value-bytes it must raise.
        try:
            state_set(q["key"], b"x" * int(q["n"]))
            return _respond(start_response, {"pid": pid, "stored": True})
        except ValueError as e:
            return _respond(start_response, {"pid": pid, "error": "ValueError: %s" % e, "after": repr(state_get(q["key"]))})
    if path == "/fill":
        for i in range(int(q["n"])):
            state_set("fill:%d" % i, b"y" * 1000)
        return _respond(start_response, {"pid": pid, "keys": len(state_keys("fill:"))})
    if path == "/sleep":
        time.sleep(float(q.get("s", "1")))
        return _respond(start_response, "slept")
    if path == "/pool_stats":
        return _respond(start_response, {"pid": pid, "stats": pool_stats()})
    if path == "/api":
        return _respond(start_response, {"pid": pid, "repr": repr(CASES[q["case"]]())})
    if path == "/typeerror":
        return _respond(start_response, dict(type_error_case(q["case"]), pid=pid))
    if path == "/roundtrip/set":
        return _respond(start_response, {"pid": pid, "stored": roundtrip_set()})
    if path == "/roundtrip/check":
        time.sleep(float(q.get("hold", "0")))  # keeps this worker busy so others take the next checks
        failures, n = roundtrip_check()
        return _respond(start_response, {"pid": pid, "failures": failures, "checked": n})
    if path == "/py_values":
        # Values Python stores for Go to read with Server.StateGet.
        state_set("py:int", 42)
        state_set("py:big", 2**100)
        state_set("py:str", "héllo")
        state_set("py:bytes", b"\x00\xff")
        state_set("py:float", 1.5)
        state_set("py:none", None)
        state_set("py:bool", True)
        state_set("py:nested", {"a": [1, (2, "x")], "s": {3}})
        return _respond(start_response, {"pid": pid})
    return _respond(start_response, "not found", status="404 Not Found")
