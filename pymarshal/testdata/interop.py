"""Interoperability check for the pymarshal Go package (run by python_test.go).

stdin: JSON lines {"name", "hex", "expr"?, "sample"?} holding marshal data
written by the Go encoder. For each, print a JSON line {"name", "repr", "ok"}
(or {"name", "error"}): repr() of marshal.loads(data), and whether the value
is the same (types included) as eval(expr) or samples[sample].
Lines {"name", "hex", "probe": true} only ask whether marshal.loads accepts
the data: the answer is {"name", "accepts"}.

Then print {"sample", "version", "hex"} for marshal.dumps(obj, version) of
every sample object and version 0..4, for the Go decoder to check.
"""
import json
import marshal
import math
import struct
import sys


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    return a == b


shared_str = "shared-" + str(7)          # not interned, refcount > 1
shared_tuple = (shared_str, 1)
shared_list = [1]
shared_big = 2 ** 100
shared_float = 1.25
shared_bytes = b"abc" * 2
interned = sys.intern("id\u00e9nt" + "ifier")  # interned non-ASCII: 't' in v3/v4

deep = None
for _ in range(150):
    deep = [deep]

samples = {
    "none": None,
    "bools": [True, False],
    "ints": [0, 1, -1, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**62, 2**63 - 1,
             -2**63, 2**63, -2**63 - 1, 2**64, 2**200, -2**200,
             12345678901234567890123],
    "floats": [0.0, -0.0, 1.5, 0.1, float("inf"), float("-inf"), 1e300,
               5e-324, -2.5e-10],
    "nan": float("nan"),
    "strs": ["", "ascii", "caf\u00e9", "\u65e5\u672c\u8a9e", "\U0001F600",
             "x" * 300, "\u00e9" * 300, "\ud800", "a\x00b"],
    "bytes": [b"", b"\x00\xff", bytes(range(256))],
    "nested": {"a": [1, (2, 3)], "b": {"c": None}, "e": (), "f": [], "g": {},
               "h": ((),)},
    "sets": [set(), frozenset(), {1}, frozenset({"x"}), {(1, 2)}, {1, 2, 3},
             frozenset({frozenset()})],
    "shared": [shared_str, shared_str, shared_tuple, shared_tuple, interned,
               interned, shared_big, shared_big, shared_float, shared_float,
               shared_bytes, shared_bytes, shared_list, shared_list],
    "dict_keys": {1: "a", (1, "b"): 2.5, None: True, b"k": [],
                  frozenset({1}): 0, 2.5: "f", False: 0},
    "environ": {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/caf\u00e9",
        "QUERY_STRING": "a=1&b=2",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "example.com",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "CONTENT_LENGTH": "",
    },
    "big_tuple": tuple(range(300)),
    "deep": deep,
}

out = sys.stdout
for line in sys.stdin:
    rec = json.loads(line)
    if rec.get("probe"):
        try:
            marshal.loads(bytes.fromhex(rec["hex"]))
            accepts = True
        except Exception:
            accepts = False
        out.write(json.dumps({"name": rec["name"], "accepts": accepts}) + "\n")
        continue
    try:
        obj = marshal.loads(bytes.fromhex(rec["hex"]))
    except Exception as e:  # report, the Go test fails on it
        out.write(json.dumps({"name": rec["name"],
                              "error": "%s: %s" % (type(e).__name__, e)}) + "\n")
        continue
    if "expr" in rec:
        want = eval(rec["expr"])
    else:
        want = samples[rec["sample"]]
    out.write(json.dumps({"name": rec["name"], "repr": repr(obj),
                          "ok": same(obj, want)}) + "\n")

for name, obj in samples.items():
    for version in range(5):
        out.write(json.dumps({"sample": name, "version": version,
                              "hex": marshal.dumps(obj, version).hex()}) + "\n")
