#!/usr/bin/python3
"""Driver of the server benchmark (bench/servers). Run it through run.sh,
which installs the Debian packages and builds the Go programs first.

For every round, every workload and every server (in an order rotated each
round) it starts the server on a free 127.0.0.1 port, waits for it, warms it
up with the load generator, measures, samples the RSS and CPU time of the
server's whole process tree from /proc, and kills the tree. Then it takes the
median per server and workload, prints tables, checks the targets and writes
results/latest.json. Python standard library only; run it with Debian's
/usr/bin/python3.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(HERE, "apps")
LUA = os.path.join(HERE, "lua")
PY = "/usr/bin/python3"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")

# --------------------------------------------------------------------------
# Servers


def server_specs(cfg):
    """name -> dict(cmd=f(module, addr) -> argv, cwd, note)."""
    w, t = str(cfg.workers), str(cfg.threads)
    return {
        "hornbeam": dict(
            cmd=lambda mod, addr: [
                cfg.hornbeam, "--python", PY, "--pythonpath", APPS, "-w", w,
                "-b", addr, mod + ":application",
            ],
            procs="%s Python worker processes (1 thread each) behind one Go process; "
            "defaults otherwise (no recycling: --max-requests defaults to 0)" % w,
        ),
        "hornbeam-embedded": dict(
            cmd=lambda mod, addr: [
                cfg.hornbeam, "--worker-mode", "embedded", "--python", PY, "--pythonpath", APPS,
                "-w", w, "-b", addr, mod + ":application",
            ],
            procs="%s hornbeam worker processes with CPython embedded, each serving HTTP "
            "on the shared listener (--worker-mode embedded), + the master" % w,
        ),
        "hornbeam-hosted": dict(
            cmd=lambda mod, addr: [
                cfg.hornbeam_hosted, "--worker-mode", "embedded", "--python", PY, "--pythonpath", APPS,
                "-w", w, "-b", addr, mod + ":application",
            ],
            procs="%s embedded workers that are %s hosting hornbeam-worker.so (the worker "
            "library beside the binary), + the master" % (w, PY),
        ),
        **({"hornbeam-baseline": dict(
            cmd=lambda mod, addr: [
                cfg.baseline, "--python", PY, "--pythonpath", APPS, "-w", w,
                "-b", addr, mod + ":application",
            ] + cfg.baseline_args,
            procs="the hornbeam binary BENCH_BASELINE names (an earlier build, for "
            "before/after ratios in one run), %s workers" % w,
        )} if cfg.baseline else {}),
        "gunicorn-sync": dict(
            cmd=lambda mod, addr: [
                PY, "/usr/bin/gunicorn", "-w", w, "-k", "sync", "-b", addr,
                "--chdir", APPS, mod + ":application",
            ],
            procs="%s sync worker processes + arbiter; the sync worker closes the "
            "connection after every response (no keep-alive)" % w,
        ),
        "gunicorn-gthread": dict(
            cmd=lambda mod, addr: [
                PY, "/usr/bin/gunicorn", "-w", w, "-k", "gthread", "--threads", t,
                "-b", addr, "--chdir", APPS, mod + ":application",
            ],
            procs="%s gthread worker processes x %s threads + arbiter" % (w, t),
        ),
        "uwsgi": dict(
            cmd=lambda mod, addr: [
                "/usr/bin/uwsgi", "--plugin", "python3", "--http-socket", addr,
                "--add-header", "Connection: close", "--master", "--processes", w,
                "--chdir", APPS, "--module", mod + ":application",
                "--disable-logging", "--need-app", "--die-on-term", "--listen", "1024",
            ],
            procs="%s worker processes + master, --http-socket (the workers speak "
            "HTTP themselves, no router process in front)" % w,
        ),
        "waitress": dict(
            cmd=lambda mod, addr: [
                PY, "-m", "waitress", "--listen=" + addr, "--threads=" + t,
                mod + ":application",
            ],
            procs="1 process, %s threads (waitress is single-process by design)" % t,
        ),
        "gohello": dict(
            cmd=lambda mod, addr: [cfg.gohello, "-addr", addr],
            procs="bare Go net/http, no Python: the ceiling",
        ),
    }


SERVER_ORDER = ["hornbeam", "hornbeam-baseline", "hornbeam-embedded", "hornbeam-hosted", "gunicorn-sync", "gunicorn-gthread", "uwsgi", "waitress", "gohello"]
PYTHON_SERVERS = SERVER_ORDER[:-1]

# --------------------------------------------------------------------------
# Workloads


def workloads(cfg):
    return [
        dict(id="hello", title="hello world, 13 bytes, keep-alive", app="hello",
             path="/", conns=64, servers=SERVER_ORDER, tool="wrk"),
        dict(id="64k", title="64 KB response", app="big", path="/64k",
             conns=64, servers=SERVER_ORDER, tool="wrk"),
        dict(id="flask", title="Flask: route + Jinja template / JSON, alternating",
             app="flaskapp", path="/page/bench", conns=64, servers=PYTHON_SERVERS,
             tool="wrk", script=os.path.join(LUA, "flask.lua")),
        dict(id="post1mb", title="POST with a 1 MB body", app="upload",
             path="/upload", conns=16, servers=SERVER_ORDER, tool="wrk",
             script=os.path.join(LUA, "post1mb.lua")),
        dict(id="slow", title="hello world while %d slow clients hold connections"
             % cfg.slow_n, app="hello", path="/", conns=64, servers=SERVER_ORDER,
             tool="wrk", slow=True),
        dict(id="h2", title="HTTP/2 h2c, hello world, h2load -c64 -m10 (hornbeam only)",
             app="hello", path="/", conns=64, servers=["hornbeam"], tool="h2load"),
    ]


# --------------------------------------------------------------------------
# /proc


def children_of(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    out.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree(root):
    """root and all its descendants that are alive."""
    seen, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(children_of(p))
    return seen


def proc_stat(pid):
    """(cpu seconds utime+stime, rss bytes, comm) or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, rss 24.
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = int(fields[21]) * PAGE
    return cpu, rss, comm


def machine_busy():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts]
    # user nice system idle iowait irq softirq steal (guest is inside user)
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICK


class Sampler(threading.Thread):
    """Samples the server's process tree every interval: peak summed RSS,
    and the last CPU time seen per pid (so processes that exit still count)."""

    def __init__(self, root, interval=0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stop_ev = threading.Event()
        self.peak_rss = 0
        self.peak_procs = 0
        self.lock = threading.Lock()
        self.cpu = {}  # pid -> (cpu, comm)
        self.pids = set()

    def sample(self):
        total, n = 0, 0
        for pid in tree(self.root):
            st = proc_stat(pid)
            if st is None:
                continue
            total += st[1]
            n += 1
            with self.lock:
                self.cpu[pid] = (st[0], st[2])
                self.pids.add(pid)
        if total > self.peak_rss:
            self.peak_rss = total
        self.peak_procs = max(self.peak_procs, n)

    def cpu_snapshot(self):
        """{pid: cpu} for the tree now (plus the last value of exited pids)."""
        self.sample()
        with self.lock:
            return {p: c for p, (c, _) in self.cpu.items()}

    def run(self):
        while not self.stop_ev.is_set():
            self.sample()
            self.stop_ev.wait(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.join(2)


# --------------------------------------------------------------------------
# Processes we start: every one of them gets its own session, and its pgid is
# written to a file that run.sh's trap kills as a last resort.


class Procs:
    def __init__(self, pidfile):
        self.pidfile = pidfile
        self.live = {}

    def start(self, argv, log, cwd=None, env=None, stdout=None):
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=stdout if stdout is not None else log,
                             stderr=log, start_new_session=True)
        self.live[p.pid] = p
        with open(self.pidfile, "a") as f:
            f.write("%d\n" % p.pid)
        return p

    def kill(self, p, grace=2.0):
        """SIGTERM the root process (the server's own way to stop, which it
        passes on to its workers), wait up to grace seconds, then SIGKILL the
        whole tree and the process group."""
        pids = tree(p.pid) if p.poll() is None else []
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.time() + grace
            while time.time() < deadline:
                if p.poll() is not None and not any(alive(x) for x in pids):
                    break
                time.sleep(0.02)
        if p.poll() is None:
            pids = list(dict.fromkeys(pids + tree(p.pid)))
        left = [x for x in pids if alive(x)]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.time() + 2
        while time.time() < deadline and (p.poll() is None or any(alive(x) for x in left)):
            time.sleep(0.02)
        self.live.pop(p.pid, None)
        return bool(left)

    def kill_all(self):
        for p in list(self.live.values()):
            self.kill(p, grace=0.5)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(port, path, proc, timeout=30.0):
    """Until GET path answers 200 (or the process dies / timeout)."""
    deadline = time.time() + timeout
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode()
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(req)
                data = s.recv(64)
                if data.startswith(b"HTTP/1.") and data[9:12] == b"200":
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def check(port, wl):
    """One request of the workload, answer checked: "ok" or what was wrong."""
    import http.client

    def get(method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            headers = {"Content-Type": "application/octet-stream"} if body else {}
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    try:
        if wl["app"] == "hello":
            st, b = get("GET", "/")
            ok = st == 200 and b == b"Hello, World!"
        elif wl["app"] == "big":
            st, b = get("GET", "/64k")
            ok = st == 200 and len(b) == 65536
        elif wl["app"] == "upload":
            st, b = get("POST", "/upload", b"x" * 1048576)
            ok = st == 200 and b == b"1048576"
        elif wl["app"] == "flaskapp":
            st, b = get("GET", "/page/bench")
            ok = st == 200 and b"Hello, bench!" in b and b.count(b"<tr") == 20
            if ok:
                st, b = get("GET", "/api/items/20")
                ok = st == 200 and json.loads(b).get("count") == 20
        else:
            return "no check"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return "error: %r" % e
    return "ok" if ok else "unexpected answer: %s %r" % (st, b[:80])


# --------------------------------------------------------------------------
# Load generators

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def ms(value, unit):
    return float(value) * UNITS[unit]


def parse_wrk(out):
    r = {"raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m|h)\s*$" % pct, out, re.M)
        r["p" + pct + "_ms"] = ms(*m.groups()) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                  (int(x) for x in m.groups()) if m else (0, 0, 0, 0)))
    r["errors"] = r["non2xx"] + sum(r["socket_errors"].values())
    m = re.search(r"^\s+Latency\s+([\d.]+)(us|ms|s|m|h)\s", out, re.M)
    r["mean_ms"] = ms(*m.groups()) if m else None
    if r["requests"] == 0:
        # No response at all in the window: wrk prints zeros, which are not
        # latencies; the requests it sent are stuck, not counted as errors.
        for pct in ("50", "75", "90", "99"):
            r["p" + pct + "_ms"] = None
        r["no_response"] = True
    return r


def run_wrk(cfg, wl, port, duration, log, probe=False):
    argv = ["wrk", "-t2", "-c%d" % wl["conns"], "-d%ds" % duration, "--timeout",
            "%ds" % cfg.wrk_timeout, "--latency"]
    if wl.get("script"):
        argv += ["-s", wl["script"]]
    argv.append("http://127.0.0.1:%d%s" % (port, wl["path"]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if probe:
        out, pr = run_probed(argv, duration + 30, min(1.0, duration * 0.3), duration - 0.4)
    else:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
        out, pr = cp.stdout + cp.stderr, {}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.write("$ %s\n%s\n" % (" ".join(argv), out))
    r = parse_wrk(out)
    r["loadgen_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    r["cmd"] = " ".join(argv)
    stall(r, pr)
    return r


def stall(r, pr):
    r["conn_probe"] = pr
    r["stalled_connections"] = pr.get("stalled") if pr else None


def conn_bytes(port, pid):
    """{client address: bytes received} for the load generator's (pid)
    established connections to port, from ss(8)."""
    try:
        out = subprocess.run(["ss", "-Htnip", "state", "established", "( dport = :%d )" % port],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    conns, cur = {}, None
    for line in out.splitlines():
        if not line[:1].isspace():
            parts = line.split()
            cur = parts[2] if len(parts) >= 4 and ("pid=%d," % pid) in line else None
        elif cur is not None:
            m = re.search(r"bytes_received:(\d+)", line)
            conns[cur] = int(m.group(1)) if m else 0
            cur = None
    return conns


def run_probed(argv, timeout, t0, t1):
    """Run the load generator; at t0 and t1 seconds in, note how many bytes
    each of its connections has received. A connection that is open at both
    moments and got nothing in between was stalled for the whole window: its
    request is in no latency figure (wrk reports completed requests only, and
    counts a stuck one as a timeout only if one of its 2-second checks happens
    to fall inside the run)."""
    port = int(re.search(r"127\.0\.0\.1:(\d+)", argv[-1]).group(1))
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = time.time()
    probe = {}
    try:
        time.sleep(max(0.0, t0 - (time.time() - start)))
        a = conn_bytes(port, p.pid)
        time.sleep(max(0.0, t1 - (time.time() - start)))
        b = conn_bytes(port, p.pid)
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out = (p.communicate()[0] or "") + "\n%s timed out" % argv[0]
        a = b = None
    if a is not None and b is not None:
        both = [k for k in a if k in b]
        probe = dict(window_s=[round(t0, 2), round(t1, 2)], open_at_start=len(a), open_at_end=len(b),
                     open_throughout=len(both),
                     stalled=sum(1 for k in both if b[k] == a[k]))
    return out, probe


def run_h2load(cfg, wl, port, warmup, duration, tmp, log):
    logfile = os.path.join(tmp, "h2load-%d.log" % port)
    argv = ["h2load", "-c%d" % wl["conns"], "-m10", "-t2", "-D", str(duration),
            "--warm-up-time=%d" % warmup, "--log-file=" + logfile,
            "http://127.0.0.1:%d%s" % (port, wl["path"])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, pr = run_probed(argv, warmup + duration + 30, warmup + min(1.0, duration * 0.3),
                         warmup + duration - 0.4)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.write("$ %s\n%s\n" % (" ".join(argv), out))
    r = {"raw": out, "cmd": " ".join(argv)}
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    r["rps"] = float(m.group(3)) if m else 0.0
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    total, started, done, ok, failed, errored, tmo = (int(x) for x in m.groups()) if m else (0,) * 7
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    codes = [int(x) for x in m.groups()] if m else [0, 0, 0, 0]
    r["requests"] = done
    m = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    r["mean_ms"] = ms(m.group(5), m.group(6)) if m else None
    r["non2xx"] = codes[2] + codes[3]
    r["socket_errors"] = {"failed": failed, "errored": errored, "timeout": tmo}
    r["errors"] = r["non2xx"] + failed + errored + tmo
    lat = []
    try:
        with open(logfile) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]) / 1000.0)
        os.unlink(logfile)
    except OSError:
        pass
    lat.sort()
    for pct in (50, 75, 90, 99):
        r["p%d_ms" % pct] = lat[min(len(lat) - 1, int(len(lat) * pct / 100))] if lat else None
    r["loadgen_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    stall(r, pr)
    return r


# --------------------------------------------------------------------------
# One measurement

ERROR_PATTERNS = re.compile(r"panic|Traceback|fatal|segfault|core dumped|CRITICAL|timed out|"
                            r"killed|worker .*(died|exited|crash)|WORKER TIMEOUT|respawn", re.I)


def one_run(cfg, procs, specs, wl, server, rnd, tmp):
    spec = specs[server]
    port = free_port()
    addr = "127.0.0.1:%d" % port
    argv = spec["cmd"](wl["app"], addr)
    logpath = os.path.join(tmp, "logs", "r%d-%s-%s.log" % (rnd, wl["id"], server))
    env = dict(os.environ)
    env["PYTHONPATH"] = APPS
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    env.pop("PYTHONHOME", None)
    res = dict(round=rnd, workload=wl["id"], server=server, port=port,
               server_cmd=" ".join(argv), log=logpath)
    with open(logpath, "w") as log:
        t0 = time.time()
        srv = procs.start(argv, log, cwd=APPS, env=env)
        slow = None
        sampler = None
        try:
            if not wait_ready(port, "/" if wl["id"] != "flask" else wl["path"], srv):
                res["failed"] = "server not ready (exit code %s)" % srv.poll()
                return res
            res["startup_s"] = round(time.time() - t0, 3)
            res["check"] = check(port, wl)
            sampler = Sampler(srv.pid)
            sampler.start()
            if wl.get("slow"):
                slow_out = open(os.path.join(tmp, "slow-%d.out" % port), "w+")
                total = cfg.slow_prehold + cfg.warmup + cfg.slow_duration + 20
                slow = procs.start([cfg.slowclients, "-addr", addr, "-n", str(cfg.slow_n),
                                    "-min", "2s", "-max", "3s", "-duration", "%ds" % total],
                                   log, stdout=slow_out)
                deadline = time.time() + 20
                while time.time() < deadline:
                    slow_out.seek(0)
                    if "ready" in slow_out.read():
                        break
                    time.sleep(0.05)
                time.sleep(cfg.slow_prehold)
            duration = cfg.slow_duration if wl.get("slow") else cfg.duration
            if wl["tool"] == "h2load":
                c0, m0 = sampler.cpu_snapshot(), machine_busy()
                r = run_h2load(cfg, wl, port, cfg.warmup, duration, tmp, log)
                # h2load's warm-up is inside this window; scale nothing, note it.
                res["cpu_window"] = "warm-up + measurement"
            else:
                run_wrk(cfg, wl, port, cfg.warmup, log)  # warm-up, discarded
                c0, m0 = sampler.cpu_snapshot(), machine_busy()
                r = run_wrk(cfg, wl, port, duration, log, probe=True)
                res["cpu_window"] = "measurement"
            c1, m1 = sampler.cpu_snapshot(), machine_busy()
            r.pop("raw", None)
            res.update(r)
            root_cpu = c1.get(srv.pid, 0) - c0.get(srv.pid, 0)
            kids_cpu = sum(c1[p] - c0.get(p, 0) for p in c1 if p != srv.pid)
            res["cpu_s"] = {"root": round(root_cpu, 3), "children": round(kids_cpu, 3)}
            res["machine_busy_s"] = round(m1 - m0, 3)
            res["others_cpu_s"] = round(max(0.0, (m1 - m0) - root_cpu - kids_cpu
                                            - r.get("loadgen_cpu_s", 0)), 3)
            res["server_alive"] = srv.poll() is None
            if slow is not None:
                procs.kill(slow, grace=3)
                slow_out.seek(0)
                lines = [l for l in slow_out.read().splitlines() if l.startswith("{")]
                res["slowclients"] = json.loads(lines[-1]) if lines else None
                slow_out.close()
                slow = None
        finally:
            if slow is not None:
                procs.kill(slow, grace=0.5)
            if sampler is not None:
                sampler.stop()
                res["peak_rss_bytes"] = sampler.peak_rss
                res["peak_procs"] = sampler.peak_procs
            res["needed_sigkill"] = procs.kill(srv)
            left = [p for p in (sampler.pids if sampler else []) if alive(p)]
            if left:
                res["leftover_pids"] = left
    with open(logpath) as f:
        flagged = [l.rstrip() for l in f if ERROR_PATTERNS.search(l) and not l.startswith("$")]
    if flagged:
        res["log_flags"] = flagged[:20]
    return res


# --------------------------------------------------------------------------
# Summary


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs, wls):
    out = {}
    for wl in wls:
        s = {}
        for server in wl["servers"]:
            rs = [r for r in runs if r["workload"] == wl["id"] and r["server"] == server]
            ok = [r for r in rs if "failed" not in r]
            if not rs:
                continue
            e = dict(
                rounds=len(ok),
                failed_rounds=len(rs) - len(ok),
                rps=med([r.get("rps") for r in ok]),
                rps_rounds=[r.get("rps") for r in rs],
                p50_ms=med([r.get("p50_ms") for r in ok]),
                p99_ms=med([r.get("p99_ms") for r in ok]),
                p99_ms_rounds=[r.get("p99_ms") for r in rs],
                errors=sum(r.get("errors", 0) for r in ok),
                requests=sum(r.get("requests", 0) for r in ok),
                peak_rss_mb=max((r.get("peak_rss_bytes", 0) for r in ok), default=0) / 2**20,
                cpu_root_s=med([r["cpu_s"]["root"] for r in ok if "cpu_s" in r]),
                cpu_children_s=med([r["cpu_s"]["children"] for r in ok if "cpu_s" in r]),
                loadgen_cpu_s=med([r.get("loadgen_cpu_s") for r in ok]),
                others_cpu_s=med([r.get("others_cpu_s") for r in ok]),
                no_response_rounds=sum(1 for r in ok if r.get("no_response")),
                stalled_connections=max((r.get("stalled_connections") or 0 for r in ok), default=0),
                stalled_rounds=sum(1 for r in ok if r.get("stalled_connections")),
                server_died=any(not r.get("server_alive", True) for r in ok),
            )
            if any(r.get("log_flags") for r in rs):
                e["log_flags"] = sorted({l for r in rs for l in r.get("log_flags", [])})[:20]
            if wl.get("slow"):
                sc = [r.get("slowclients") or {} for r in ok]
                e["slow_min_open"] = min((x.get("min_open_after_ready", 0) for x in sc), default=0)
                e["slow_reconnects"] = sum(x.get("reconnects", 0) for x in sc)
            s[server] = e
        hb = (s.get("hornbeam") or {}).get("rps")
        for server, e in s.items():
            e["ratio_to_hornbeam"] = (e["rps"] / hb) if (hb and e["rps"] is not None) else None
        out[wl["id"]] = s
    if "slow" in out and "hello" in out:
        for server, e in out["slow"].items():
            base = (out["hello"].get(server) or {}).get("rps")
            e["ratio_to_own_hello"] = (e["rps"] / base) if base and e["rps"] is not None else None
    return out


def targets(summary):
    t = []

    def rps(w, s):
        return ((summary.get(w) or {}).get(s) or {}).get("rps")

    def add(name, value, goal, met, detail):
        t.append(dict(target=name, value=value, goal=goal, met=met, detail=detail))

    hb = rps("hello", "hornbeam")
    for other, k in (("gunicorn-sync", 3.0), ("gunicorn-gthread", 2.5)):
        o = rps("hello", other)
        if hb is not None and o:
            add("hello: hornbeam >= %.1fx %s" % (k, other), round(hb / o, 2), k, hb / o >= k,
                "%.0f vs %.0f req/s" % (hb, o))
    o = rps("hello", "uwsgi")
    if hb is not None and o:
        add("hello: hornbeam ahead of uwsgi", round(hb / o, 2), 1.0, hb > o,
            "%.0f vs %.0f req/s" % (hb, o))
    o = rps("hello", "gohello")
    if hb is not None and o:
        add("hello: hornbeam >= 80% of bare Go", round(hb / o, 2), 0.8, hb / o >= 0.8,
            "%.0f vs %.0f req/s" % (hb, o))
    for w in ("64k", "flask"):
        h = rps(w, "hornbeam")
        others = {s: rps(w, s) for s in PYTHON_SERVERS if not s.startswith("hornbeam") and rps(w, s) is not None}
        if h is not None and others:
            best = max(others, key=others.get)
            add("%s: hornbeam ahead of every other Python server" % w,
                round(h / others[best], 2) if others[best] else None, 1.0,
                all(h > v for v in others.values()),
                "hornbeam %.0f, best other %s %.0f req/s" % (h, best, others[best]))
    e = (summary.get("slow") or {}).get("hornbeam")
    if e and e.get("ratio_to_own_hello") is not None:
        add("slow clients: hornbeam keeps >= 90% of its hello throughput",
            round(e["ratio_to_own_hello"], 3), 0.9, e["ratio_to_own_hello"] >= 0.9,
            "%.0f req/s with slow clients vs %.0f without" % (e["rps"], hb or 0))
    h = (summary.get("hello") or {}).get("hornbeam") or {}
    p99 = {s: e.get("p99_ms") for s, e in (summary.get("hello") or {}).items()
           if s in PYTHON_SERVERS and (s == "hornbeam" or not s.startswith("hornbeam"))
           and e.get("p99_ms") is not None}
    if h.get("p99_ms") is not None and len(p99) > 1:
        best = min(p99, key=p99.get)
        go = ((summary.get("hello") or {}).get("gohello") or {}).get("p99_ms")
        add("hello p99 at 64 connections lowest of the Python servers", round(h["p99_ms"], 3),
            round(p99[best], 3), best == "hornbeam",
            "lowest: %s %.2f ms; hornbeam %.2f ms%s" % (
                best, p99[best], h["p99_ms"],
                "; bare Go %.2f ms" % go if go is not None else ""))
    return t


# --------------------------------------------------------------------------
# Printing


def fmt_ms(x):
    if x is None:
        return "-"
    if x < 1:
        return "%.0fus" % (x * 1000)
    if x < 1000:
        return "%.2fms" % x
    return "%.2fs" % (x / 1000)


def fmt_ratio(x):
    return "-" if x is None else "%.2f" % x


def table(summary, wls, cfg):
    lines = []
    for wl in wls:
        s = summary.get(wl["id"])
        if not s:
            continue
        lines.append("")
        lines.append("== %s: %s (%s, median of %d round%s) ==" % (
            wl["id"], wl["title"],
            "h2load -c%d -m10" % wl["conns"] if wl["tool"] == "h2load"
            else "wrk -t2 -c%d" % wl["conns"],
            cfg.rounds, "s" if cfg.rounds > 1 else ""))
        head = "%-17s %10s %9s %9s %8s %10s %9s" % (
            "server", "req/s", "p50", "p99", "errors", "peak RSS", "vs hb")
        if wl.get("slow"):
            head += " %9s %9s" % ("vs hello", "min open")
        lines.append(head)
        for server in wl["servers"]:
            e = s.get(server)
            if not e:
                continue
            row = "%-17s %10s %9s %9s %8d %7.1f MB %9s" % (
                server, "-" if e["rps"] is None else "{:,.0f}".format(e["rps"]),
                fmt_ms(e["p50_ms"]), fmt_ms(e["p99_ms"]), e["errors"], e["peak_rss_mb"],
                fmt_ratio(e["ratio_to_hornbeam"]))
            if wl.get("slow"):
                row += " %9s %9s" % (fmt_ratio(e.get("ratio_to_own_hello")),
                                     e.get("slow_min_open", "-"))
            if e["stalled_rounds"] and not e["no_response_rounds"]:
                row += "  (!) up to %d of %d connections stalled (%d round(s))" % (
                    e["stalled_connections"], wl["conns"], e["stalled_rounds"])
            if e["no_response_rounds"]:
                row += "  (no response at all in %d round(s))" % e["no_response_rounds"]
            if e["failed_rounds"]:
                row += "  (%d round(s) failed to start)" % e["failed_rounds"]
            if e["server_died"]:
                row += "  (server died!)"
            lines.append(row)
    return "\n".join(lines)


def cpu_table(summary, wls):
    lines = ["", "== server CPU seconds during the measured window (median), front/root "
             "process vs its children =="]
    lines.append("%-9s %-17s %8s %9s %9s %8s %10s" % (
        "workload", "server", "root", "children", "loadgen", "others", "us/request"))
    for wl in wls:
        for server, e in (summary.get(wl["id"]) or {}).items():
            if e.get("cpu_root_s") is None:
                continue
            tot = e["cpu_root_s"] + e["cpu_children_s"]
            per = (tot / (e["requests"] / max(1, e["rounds"])) * 1e6) if e["requests"] else None
            lines.append("%-9s %-17s %8.2f %9.2f %9.2f %8.2f %10s" % (
                wl["id"], server, e["cpu_root_s"], e["cpu_children_s"],
                e["loadgen_cpu_s"] or 0, e["others_cpu_s"] or 0,
                "-" if per is None else "%.0f" % per))
    return "\n".join(lines)


# --------------------------------------------------------------------------


def versions(cfg):
    def sh(argv):
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return (cp.stdout + cp.stderr).strip().splitlines()[0] if (cp.stdout + cp.stderr).strip() else ""
        except Exception as e:  # noqa: BLE001 - a version string only
            return "unknown (%s)" % e

    def deb(pkg):
        return sh(["dpkg-query", "-W", "-f=${Version}", pkg])

    v = {
        "hornbeam": sh([cfg.hornbeam, "--version"]),
        "hornbeam_git": sh(["git", "-C", REPO, "rev-parse", "HEAD"]),
        "hornbeam_git_dirty_files": len(subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain"], capture_output=True,
            text=True).stdout.splitlines()),
        "go": sh(["go", "version"]),
        "python": sh([PY, "--version"]),
    }
    for pkg in ("gunicorn", "uwsgi", "uwsgi-plugin-python3", "python3-waitress",
                "python3-flask", "wrk", "nghttp2-client"):
        v[pkg] = deb(pkg)
    return v


def select(wls, only_servers, only_wls):
    """The workloads and servers BENCH_WORKLOADS and BENCH_SERVERS keep
    (comma-separated; empty: all)."""
    if only_wls:
        wls = [w for w in wls if w["id"] in only_wls]
    if only_servers:
        for w in wls:
            w["servers"] = [s for s in w["servers"] if s in only_servers]
        wls = [w for w in wls if w["servers"]]
    return wls


def exit_on_signals():
    """SIGTERM, SIGINT and SIGHUP end the run through SystemExit, so the
    finally that kills the servers runs."""
    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)


def make_plan(rounds, wls):
    """Every (round, workload, server), the servers' order rotated each
    round so that none always runs first."""
    plan = []
    for rnd in range(rounds):
        for wl in wls:
            k = rnd % len(wl["servers"])
            for server in wl["servers"][k:] + wl["servers"][:k]:
                plan.append((rnd, wl, server))
    return plan


PROBLEM_KEYS = ("round", "workload", "server", "failed", "check", "server_alive",
                "stalled_connections", "leftover_pids", "log_flags", "log")


def problems_of(runs, keys=PROBLEM_KEYS, errors_count=False):
    """The runs that went wrong, with what the report shows of them."""
    out = []
    for r in runs:
        if r.get("failed") or not r.get("server_alive", True) or r.get("leftover_pids") \
                or r.get("log_flags") or r.get("check", "ok") != "ok" \
                or r.get("stalled_connections") or (errors_count and r.get("errors")):
            out.append({k: r.get(k) for k in keys if r.get(k) is not None})
    return out


def machine(load_at_start):
    return dict(cpus=os.cpu_count(), kernel=platform.release(), loadavg_at_start=load_at_start,
                loadavg_at_end=open("/proc/loadavg").read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--hornbeam", required=True)
    ap.add_argument("--hornbeam-hosted", required=True, help="a hornbeam binary with hornbeam-worker.so beside it")
    ap.add_argument("--gohello", required=True)
    ap.add_argument("--slowclients", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--pidfile", required=True)
    cfg = ap.parse_args()

    env = os.environ.get
    cfg.rounds = int(env("BENCH_ROUNDS", 1 if cfg.quick else 3))
    cfg.warmup = int(env("BENCH_WARMUP", 1 if cfg.quick else 2))
    cfg.duration = int(env("BENCH_DURATION", 2 if cfg.quick else 5))
    cfg.workers = int(env("BENCH_WORKERS", 2))
    cfg.threads = int(env("BENCH_THREADS", 4))
    cfg.slow_n = int(env("BENCH_SLOW_CLIENTS", 500))
    # The slow clients are given a head start, and their measured window is
    # long enough to take in a 10 s header timeout (hornbeam's default) and
    # the reconnects that follow it.
    cfg.slow_prehold = int(env("BENCH_SLOW_PREHOLD", 1 if cfg.quick else 3))
    cfg.slow_duration = int(env("BENCH_SLOW_DURATION", 2 if cfg.quick else 6))
    cfg.wrk_timeout = 2  # wrk's default
    cfg.baseline = env("BENCH_BASELINE", "")
    cfg.baseline_args = env("BENCH_BASELINE_ARGS", "").split()
    only_servers = set(filter(None, env("BENCH_SERVERS", "").split(",")))
    only_wls = set(filter(None, env("BENCH_WORKLOADS", "").split(",")))

    specs = server_specs(cfg)
    wls = workloads(cfg)
    for w in wls:
        w["servers"] = [s for s in w["servers"] if s in specs]
    wls = select(wls, only_servers, only_wls)

    os.makedirs(os.path.join(cfg.tmp, "logs"), exist_ok=True)
    procs = Procs(cfg.pidfile)
    exit_on_signals()
    plan = make_plan(cfg.rounds, wls)
    print("plan: %d rounds x %d workloads = %d runs; warm-up %ds, measure %ds "
          "(slow clients: head start %ds, measure %ds); %d workers each"
          % (cfg.rounds, len(wls), len(plan), cfg.warmup, cfg.duration, cfg.slow_prehold,
             cfg.slow_duration, cfg.workers), flush=True)

    started = time.time()
    load_at_start = open("/proc/loadavg").read().split()[:3]
    runs = []
    try:
        for i, (rnd, wl, server) in enumerate(plan):
            r = one_run(cfg, procs, specs, wl, server, rnd + 1, cfg.tmp)
            runs.append(r)
            extra = ""
            if r.get("slowclients"):
                extra = " slow-open-min=%s reconnects=%s" % (
                    r["slowclients"].get("min_open_after_ready"), r["slowclients"].get("reconnects"))
            print("[%3d/%d %5.0fs] round %d %-8s %-17s %s" % (
                i + 1, len(plan), time.time() - started, rnd + 1, wl["id"], server,
                r.get("failed") or "%10.0f req/s  p99 %-8s errors %-6d rss %.0f MB cpu %s/%s%s" % (
                    r.get("rps", 0), fmt_ms(r.get("p99_ms")), r.get("errors", 0),
                    r.get("peak_rss_bytes", 0) / 2**20, r["cpu_s"]["root"],
                    r["cpu_s"]["children"], extra)), flush=True)
    finally:
        procs.kill_all()

    summary = summarize(runs, wls)
    tg = targets(summary)
    print(table(summary, wls, cfg))
    print(cpu_table(summary, wls))
    print("\n== targets ==")
    for t in tg:
        print("%-4s %-62s %-7s (goal %s) %s" % ("MET" if t["met"] else "MISS", t["target"],
                                               t["value"], t["goal"], t["detail"]))
    problems = problems_of(runs)
    if problems:
        print("\n== problems seen (server logs in %s, kept with KEEP_LOGS=1) ==" % cfg.tmp)
        for p in problems:
            print(json.dumps(p)[:600])

    doc = dict(
        generated=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        quick=cfg.quick,
        wall_s=round(time.time() - started, 1),
        machine=machine(load_at_start),
        config=dict(rounds=cfg.rounds, warmup_s=cfg.warmup, duration_s=cfg.duration,
                    workers=cfg.workers, threads=cfg.threads, slow_clients=cfg.slow_n,
                    slow_prehold_s=cfg.slow_prehold, slow_duration_s=cfg.slow_duration,
                    wrk_timeout_s=cfg.wrk_timeout),
        versions=versions(cfg),
        servers={s: dict(processes=specs[s]["procs"],
                         command=" ".join(specs[s]["cmd"]("MODULE", "127.0.0.1:PORT")))
                 for s in SERVER_ORDER if s in specs},
        workloads=[{k: v for k, v in w.items() if k != "script"} | (
            {"script": os.path.relpath(w["script"], HERE)} if w.get("script") else {})
            for w in wls],
        summary=summary,
        targets=tg,
        problems=problems,
        runs=runs,
    )
    os.makedirs(os.path.dirname(cfg.out), exist_ok=True)
    with open(cfg.out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(cfg.out + ".tmp", cfg.out)
    print("\nwrote %s" % cfg.out)


if __name__ == "__main__":
    main()
