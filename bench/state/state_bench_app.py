"""Benchmark app for bench/state/run.sh: shared-state round trips per second
from ONE Python worker, through hornbeam.state_* and through redis-py.

    GET /bench?seconds=S&rounds=R&redis_port=P&redis_unix=PATH
        runs every (op, backend) pair R times for about S seconds each, inside
        this one request, and returns JSON: {op: {backend: [ops/s per round]}}
    GET /profile?op=incr|get|get_miss&n=N
        cProfile of N hornbeam calls, as text (where the Python time goes)
    GET /breakdown?seconds=S
        what bounds a round trip: the Python layers alone (hornbeam's
        encoding and decoding with the socket replaced by a canned reply) and
        a bare socketpair ping-pong with a forked Python echo process (the
        cost of two context switches and four syscalls, without Go)
"""

import cProfile
import io
import json
import marshal
import os
import pstats
import socket
import time
import urllib.parse

import hornbeam
from hornbeam import _state, _wire

GET_VALUE = "0123456789abcdef"  # the value every backend's get returns (16 chars)
BATCH = 500


def _rate(call, key, seconds):
    """Call call(key) in batches until `seconds` have passed; return ops/s."""
    n = 0
    clock = time.perf_counter
    t0 = clock()
    deadline = t0 + seconds
    while True:
        for _ in range(BATCH):
            call(key)
        n += BATCH
        t = clock()
        if t >= deadline:
            return n / (t - t0)


def _backends(q):
    out = {}
    hornbeam.state_set("bench:get", GET_VALUE)
    out["hornbeam"] = {
        "incr": hornbeam.state_incr,
        "get": hornbeam.state_get,
        # What a get costs when the worker's copy is stale: the round trip.
        "get_miss": lambda k: _state._user_value(_state._backend("get", _state._wire_key(k))),
    }
    if q.get("redis_port") or q.get("redis_unix"):
        import redis  # only needed for the comparison
    if q.get("redis_unix"):
        r = redis.Redis(unix_socket_path=q["redis_unix"])
        r.set("bench:get", GET_VALUE)
        out["redis_unix"] = {"incr": r.incr, "get": r.get, "get_miss": r.get}
    if q.get("redis_port"):
        r = redis.Redis(host="127.0.0.1", port=int(q["redis_port"]))
        r.set("bench:get", GET_VALUE)
        out["redis_tcp"] = {"incr": r.incr, "get": r.get, "get_miss": r.get}
    # Each backend must really answer: check before timing.
    for name, ops in out.items():
        v = ops["get"]("bench:get")
        if v not in (GET_VALUE, GET_VALUE.encode()):
            raise RuntimeError("%s get returned %r" % (name, v))
        a, b = ops["incr"]("bench:check"), ops["incr"]("bench:check")
        if b != a + 1:
            raise RuntimeError("%s incr returned %r then %r" % (name, a, b))
    return out


def bench(q):
    seconds = float(q.get("seconds", "1"))
    rounds = int(q.get("rounds", "3"))
    backends = _backends(q)
    result = {"pid": os.getpid(), "ops": {}}
    for op, key in (("incr", "bench:incr"), ("get", "bench:get"), ("get_miss", "bench:get")):
        result["ops"][op] = {name: [] for name in backends}
        for name, ops in backends.items():
            _rate(ops[op], key, 0.1)  # warm up
        for _ in range(rounds):  # interleaved, so drift hits every backend alike
            for name, ops in backends.items():
                result["ops"][op][name].append(_rate(ops[op], key, seconds))
    return result


def profile(q):
    op = q.get("op", "incr")
    n = int(q.get("n", "50000"))
    call = _backends({})["hornbeam"][op]
    key = "bench:" + op.split("_")[0]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(n):
        call(key)
    prof.disable()
    elapsed = time.perf_counter() - t0
    out = io.StringIO()
    out.write("cProfile of %d hornbeam.state_%s calls: %.2f s under the profiler\n" % (n, op, elapsed))
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(14)
    return out.getvalue()


def breakdown(q):
    seconds = float(q.get("seconds", "1"))
    out = {}
    # 1. The Python layers without I/O: the real state_incr/state_get, whose
    # backend gets a canned reply instead of a socket round trip.
    real = _state._backend
    replies = {
        "incr": marshal.dumps((True, 7), 2),
        # getv's reply, with a change counter that never matches: every call
        # takes the path of a stale copy.
        "get": marshal.dumps((True, (marshal.dumps(GET_VALUE, 2), 0xFFFFFFFF, None)), 2),
    }
    try:
        for op, call in (("incr", hornbeam.state_incr), ("get", hornbeam.state_get)):
            reply = replies[op]
            _state._backend = _state._Server(lambda payload: reply)
            out["python_layers_" + op] = _rate(call, "bench:" + op, seconds)
    finally:
        _state._backend = real
    # 2. The IPC floor: the same frames bounced off a forked Python process.
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        a.close()
        try:
            while True:
                d = b.recv(65536)
                if not d:
                    break
                b.sendall(d)
        finally:
            os._exit(0)
    b.close()
    msg = _wire.frame(_wire.STATE_CALL, 1, marshal.dumps(("incr", "bench:incr", 1), 2))
    try:
        out["socketpair_pingpong"] = _rate(lambda m: (a.sendall(m), a.recv(65536)), msg, seconds)
    finally:
        a.close()
        os.waitpid(pid, 0)
    return out


def application(environ, start_response):
    q = {k: v[0] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ["PATH_INFO"]
    if path == "/bench":
        body, ctype = json.dumps(bench(q)), "application/json"
    elif path == "/profile":
        body, ctype = profile(q), "text/plain"
    elif path == "/breakdown":
        body, ctype = json.dumps(breakdown(q)), "application/json"
    elif path == "/ping":
        body, ctype = "pong", "text/plain"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", ctype)])
    return [body.encode()]
