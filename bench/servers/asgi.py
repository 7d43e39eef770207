#!/usr/bin/python3
"""Driver of the ASGI server benchmark (bench/servers, `run.sh --asgi`).
Run it through run.sh, which installs the Debian packages and builds
hornbeam and wsload first.

Same method as bench.py (whose helpers it imports): for every round, every
workload and every server (in an order rotated each round) it starts the
server on a free 127.0.0.1 port, waits for it, checks one answer, warms it
up, measures, samples the RSS and CPU time of the server's whole process
tree from /proc, and kills the tree. Workloads: a raw ASGI hello world and a
FastAPI JSON route (wrk), a WebSocket echo (wsload echo: messages/s and
latency), and N idle WebSockets (wsload idle: RSS of the server's tree after
opening them minus before, per socket). Writes results/asgi-latest.json.
Python standard library only; run it with Debian's /usr/bin/python3.
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside bench.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the WSGI driver: /proc sampling, processes, wrk)
from bench import (APPS, HERE, PY, REPO, Procs, Sampler, alive, fmt_ms,  # noqa: E402
                   fmt_ratio, free_port, machine_busy, med, run_wrk, tree, proc_stat)

SERVER_ORDER = ["hornbeam", "uvicorn", "hypercorn", "daphne"]


def server_specs(cfg):
    """name -> dict(cmd=f(module, addr) -> argv, procs)."""
    w = str(cfg.workers)

    def split(addr):
        return addr.rsplit(":", 1)

    return {
        "hornbeam": dict(
            cmd=lambda mod, addr: [
                cfg.hornbeam, "-k", "asgi", "--python", PY, "--pythonpath", APPS,
                "-w", w, "-b", addr, mod + ":app"] + cfg.hornbeam_args,
            procs="%s hornbeam worker processes with CPython embedded (one asyncio loop "
            "each, HTTP and WebSockets in Go), + the master; defaults otherwise" % w,
        ),
        "uvicorn": dict(
            cmd=lambda mod, addr: [
                PY, "-m", "uvicorn", "--workers", w, "--host", split(addr)[0],
                "--port", split(addr)[1], "--app-dir", APPS, "--no-access-log",
                "--log-level", "warning", mod + ":app"],
            procs="%s worker processes + the supervisor (--workers); Debian's package: "
            "asyncio loop, h11 for HTTP, websockets for WebSockets (no uvloop, no "
            "httptools installed)" % w,
        ),
        "hypercorn": dict(
            cmd=lambda mod, addr: [
                PY, "-m", "hypercorn", "-w", w, "-b", addr, "--backlog", "2048",
                mod + ":app"],
            procs="%s worker processes + the parent (-w), asyncio worker class; "
            "--backlog 2048 (its default is 100)" % w,
        ),
        "daphne": dict(
            cmd=lambda mod, addr: [
                PY, os.path.join(HERE, "daphne_workers.py"), w, addr, "-v", "0",
                mod + ":app"],
            procs="%s daphne processes sharing one listening socket (--fd, opened by "
            "daphne_workers.py, backlog 2048, which then execs daphne): daphne has no "
            "worker option; -v 0 (no access log)" % w,
        ),
    }


def workloads(cfg):
    return [
        dict(id="asgi-hello", title="raw ASGI hello world, 13 bytes, keep-alive",
             app="asgi_hello", path="/", conns=64, tool="wrk", unit="req/s"),
        dict(id="fastapi", title="FastAPI: async route returning a small JSON object",
             app="fastapi_json", path="/json", conns=64, tool="wrk", unit="req/s"),
        dict(id="ws-echo", title="WebSocket echo, %d connections, %d-byte text messages"
             % (cfg.ws_conns, cfg.ws_size), app="asgi_hello", path="/ws",
             conns=cfg.ws_conns, tool="wsload-echo", unit="msg/s"),
        dict(id="ws-idle", title="%d idle WebSockets: server RSS per socket" % cfg.ws_idle,
             app="asgi_hello", path="/ws", conns=cfg.ws_idle, tool="wsload-idle",
             unit="KB/socket", value="kb_per_socket", lower_is_better=True),
    ]


# --------------------------------------------------------------------------


def check(cfg, port, wl):
    import http.client

    try:
        if wl["app"] == "fastapi_json":
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/json")
            r = c.getresponse()
            b = r.read()
            c.close()
            ok = r.status == 200 and json.loads(b) == {
                "message": "Hello, World!", "id": 42, "tags": ["a", "b"], "ok": True}
            return "ok" if ok else "unexpected answer: %s %r" % (r.status, b[:80])
        if wl["tool"] == "wrk":
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/")
            r = c.getresponse()
            b = r.read()
            c.close()
            ok = r.status == 200 and b == b"Hello, World!"
            return "ok" if ok else "unexpected answer: %s %r" % (r.status, b[:80])
        # WebSocket: 4 connections echo for 0.3 s without an error.
        r = run_wsload_echo(cfg, port, wl, 0.3, None, conns=4)
        ok = r.get("requests", 0) > 0 and not r.get("errors")
        return "ok" if ok else "websocket echo failed: %s" % json.dumps(r)[:300]
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return "error: %r" % e


def run_wsload_echo(cfg, port, wl, duration, log, conns=None):
    argv = [cfg.wsload, "-mode", "echo", "-url", "ws://127.0.0.1:%d%s" % (port, wl["path"]),
            "-c", str(conns or wl["conns"]), "-size", str(cfg.ws_size), "-warmup", "0s",
            "-d", "%gs" % duration, "-sources", str(cfg.ws_sources)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if log is not None:
        log.write("$ %s\n%s%s\n" % (" ".join(argv), cp.stdout, cp.stderr))
    lines = [l for l in cp.stdout.splitlines() if l.startswith("{")]
    r = json.loads(lines[-1]) if lines else {"errors": 1, "error_sample": [cp.stderr[-300:]]}
    out = dict(rps=r.get("msgs_per_s", 0.0), requests=r.get("messages", 0),
               p50_ms=r.get("p50_ms"), p90_ms=r.get("p90_ms"), p99_ms=r.get("p99_ms"),
               max_ms=r.get("max_ms"), errors=r.get("errors", 0), cmd=" ".join(argv),
               loadgen_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
    if r.get("error_sample") or r.get("dial_errors"):
        out["error_sample"] = (r.get("error_sample") or []) + (r.get("dial_errors") or [])
    if not out["requests"]:
        out["no_response"] = True
        out["p50_ms"] = out["p99_ms"] = None
    return out


def tree_rss(root):
    total = 0
    for pid in tree(root):
        st = proc_stat(pid)
        if st:
            total += st[1]
    return total


def steady_rss(root, n=5, gap=0.2):
    """Median of n samples of the tree's summed RSS, and of the root's own."""
    xs, rs = [], []
    for i in range(n):
        xs.append(tree_rss(root))
        st = proc_stat(root)
        rs.append(st[1] if st else 0)
        if i < n - 1:
            time.sleep(gap)
    return med(xs), med(rs)


def run_idle(cfg, procs, srv, port, wl, log, tmp):
    """Warm up (64 echo connections), settle, RSS before; open wl["conns"]
    WebSockets and hold them; settle, RSS after; then wsload checks an echo on
    100 of them and closes all."""
    res = {}
    run_wsload_echo(cfg, port, dict(wl, conns=64), 1.0, log)
    time.sleep(1.0)
    before, root_before = steady_rss(srv.pid)
    argv = [cfg.wsload, "-mode", "idle", "-url", "ws://127.0.0.1:%d%s" % (port, wl["path"]),
            "-c", str(wl["conns"]), "-sources", str(cfg.ws_sources), "-check", "100",
            "-dial-concurrency", "64", "-max", "%ds" % (cfg.ws_idle_timeout + 60)]
    out_path = os.path.join(tmp, "wsload-idle-%d.out" % port)
    outf = open(out_path, "w+")
    t0 = time.time()
    p = procs.start(argv, log, stdout=outf, stdin_pipe=True)
    opened = None
    try:
        deadline = time.time() + cfg.ws_idle_timeout
        while time.time() < deadline and p.poll() is None:
            outf.seek(0)
            lines = [l for l in outf.read().splitlines() if l.startswith("{")]
            if lines:
                opened = json.loads(lines[0])
                break
            time.sleep(0.1)
        if opened is None:
            res["failed"] = "wsload idle: sockets not opened in %ds" % cfg.ws_idle_timeout
            return res
        res["open_s"] = round(opened.get("open_s", time.time() - t0), 3)
        time.sleep(cfg.ws_settle)
        after, root_after = steady_rss(srv.pid)
        p.stdin.write(b"\n")
        p.stdin.flush()
        p.stdin.close()
        p.wait(timeout=60)
        outf.seek(0)
        lines = [l for l in outf.read().splitlines() if l.startswith("{")]
        final = json.loads(lines[-1]) if len(lines) > 1 else {}
    finally:
        if p.poll() is None:
            procs.kill(p, grace=1)
        outf.close()
    n = opened.get("open", 0)
    res.update(
        rss_before_bytes=before, rss_after_bytes=after, opened=n,
        root_rss_before_bytes=root_before, root_rss_after_bytes=root_after,
        kb_per_socket_root=((root_after - root_before) / n / 1024) if n else None,
        dial_failed=opened.get("failed", 0),
        kb_per_socket=((after - before) / n / 1024) if n else None,
        closed_by_server=final.get("closed_by_server"),
        check_ok=final.get("check_ok"), checked=final.get("checked"),
        handshakes_per_s=round(n / opened["open_s"], 1) if opened.get("open_s") else None,
        cmd=" ".join(argv),
    )
    for k in ("dial_errors",):
        if opened.get(k):
            res[k] = opened[k]
    for k in ("close_sample", "check_errors"):
        if final.get(k):
            res[k] = final[k]
    res["errors"] = (opened.get("failed", 0) + (final.get("closed_by_server") or 0)
                     + ((final.get("checked") or 0) - (final.get("check_ok") or 0)))
    return res


def one_run(cfg, procs, specs, wl, server, rnd, tmp):
    spec = specs[server]
    port = free_port()
    addr = "127.0.0.1:%d" % port
    argv = spec["cmd"](wl["app"], addr)
    logpath = os.path.join(tmp, "logs", "asgi-r%d-%s-%s.log" % (rnd, wl["id"], server))
    env = dict(os.environ)
    env["PYTHONPATH"] = APPS
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    env.pop("PYTHONHOME", None)
    res = dict(round=rnd, workload=wl["id"], server=server, port=port,
               server_cmd=" ".join(argv), log=logpath)
    with open(logpath, "w") as log:
        t0 = time.time()
        srv = procs.start(argv, log, cwd=APPS, env=env)
        sampler = None
        try:
            if not bench.wait_ready(port, "/json" if wl["app"] == "fastapi_json" else "/", srv,
                                    timeout=60):
                res["failed"] = "server not ready (exit code %s)" % srv.poll()
                return res
            res["startup_s"] = round(time.time() - t0, 3)
            res["check"] = check(cfg, port, wl)
            sampler = Sampler(srv.pid)
            sampler.start()
            if wl["tool"] == "wsload-idle":
                c0, m0 = sampler.cpu_snapshot(), machine_busy()
                r = run_idle(cfg, procs, srv, port, wl, log, tmp)
                res["cpu_window"] = "warm-up + open + hold + close"
            elif wl["tool"] == "wsload-echo":
                run_wsload_echo(cfg, port, wl, cfg.warmup, log)  # warm-up, discarded
                c0, m0 = sampler.cpu_snapshot(), machine_busy()
                r = run_wsload_echo(cfg, port, wl, cfg.duration, log)
                res["cpu_window"] = "measurement"
            else:
                run_wrk(cfg, wl, port, cfg.warmup, log)  # warm-up, discarded
                c0, m0 = sampler.cpu_snapshot(), machine_busy()
                r = run_wrk(cfg, wl, port, cfg.duration, log, probe=True)
                r.pop("raw", None)
                res["cpu_window"] = "measurement"
            c1, m1 = sampler.cpu_snapshot(), machine_busy()
            res.update(r)
            root_cpu = c1.get(srv.pid, 0) - c0.get(srv.pid, 0)
            kids_cpu = sum(c1[p] - c0.get(p, 0) for p in c1 if p != srv.pid)
            res["cpu_s"] = {"root": round(root_cpu, 3), "children": round(kids_cpu, 3)}
            res["machine_busy_s"] = round(m1 - m0, 3)
            res["others_cpu_s"] = round(max(0.0, (m1 - m0) - root_cpu - kids_cpu
                                            - r.get("loadgen_cpu_s", 0)), 3)
            res["server_alive"] = srv.poll() is None
        finally:
            if sampler is not None:
                sampler.stop()
                res["peak_rss_bytes"] = sampler.peak_rss
                res["peak_procs"] = sampler.peak_procs
            res["needed_sigkill"] = procs.kill(srv, grace=3)
            left = [p for p in (sampler.pids if sampler else []) if alive(p)]
            if left:
                res["leftover_pids"] = left
    with open(logpath) as f:
        flagged = [l.rstrip() for l in f if bench.ERROR_PATTERNS.search(l) and not l.startswith("$")]
    if flagged:
        res["log_flags"] = flagged[:20]
    return res


# --------------------------------------------------------------------------


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
                rounds=len(ok), failed_rounds=len(rs) - len(ok),
                errors=sum(r.get("errors", 0) for r in ok),
                peak_rss_mb=max((r.get("peak_rss_bytes", 0) for r in ok), default=0) / 2**20,
                cpu_root_s=med([r["cpu_s"]["root"] for r in ok if "cpu_s" in r]),
                cpu_children_s=med([r["cpu_s"]["children"] for r in ok if "cpu_s" in r]),
                loadgen_cpu_s=med([r.get("loadgen_cpu_s") for r in ok]),
                others_cpu_s=med([r.get("others_cpu_s") for r in ok]),
                server_died=any(not r.get("server_alive", True) for r in ok),
            )
            if wl["tool"] == "wsload-idle":
                e.update(
                    kb_per_socket=med([r.get("kb_per_socket") for r in ok]),
                    kb_per_socket_rounds=[r.get("kb_per_socket") for r in rs],
                    rss_before_mb=med([r.get("rss_before_bytes") for r in ok]) / 2**20 if ok else None,
                    rss_after_mb=med([r.get("rss_after_bytes") for r in ok]) / 2**20 if ok else None,
                    opened_min=min((r.get("opened", 0) for r in ok), default=0),
                    open_s=med([r.get("open_s") for r in ok]),
                    handshakes_per_s=med([r.get("handshakes_per_s") for r in ok]),
                    closed_by_server=sum(r.get("closed_by_server") or 0 for r in ok),
                    check_ok=sum(r.get("check_ok") or 0 for r in ok),
                    checked=sum(r.get("checked") or 0 for r in ok),
                )
            else:
                e.update(
                    rps=med([r.get("rps") for r in ok]),
                    rps_rounds=[r.get("rps") for r in rs],
                    p50_ms=med([r.get("p50_ms") for r in ok]),
                    p99_ms=med([r.get("p99_ms") for r in ok]),
                    p99_ms_rounds=[r.get("p99_ms") for r in rs],
                    requests=sum(r.get("requests", 0) for r in ok),
                    no_response_rounds=sum(1 for r in ok if r.get("no_response")),
                    stalled_connections=max((r.get("stalled_connections") or 0 for r in ok), default=0),
                    stalled_rounds=sum(1 for r in ok if r.get("stalled_connections")),
                )
            if any(r.get("log_flags") for r in rs):
                e["log_flags"] = sorted({l for r in rs for l in r.get("log_flags", [])})[:20]
            s[server] = e
        key = wl.get("value", "rps")
        hb = (s.get("hornbeam") or {}).get(key)
        for server, e in s.items():
            v = e.get(key)
            e["ratio_to_hornbeam"] = (v / hb) if (hb and v is not None) else None
        out[wl["id"]] = s
    return out


def targets(summary, wls):
    """Issue #14 item 10: ahead of every other server on each workload, and
    less memory per idle WebSocket than each of them."""
    t = []
    for wl in wls:
        s = summary.get(wl["id"]) or {}
        key = wl.get("value", "rps")
        h = (s.get("hornbeam") or {}).get(key)
        others = {k: e.get(key) for k, e in s.items() if k != "hornbeam" and e.get(key) is not None}
        if h is None or not others:
            continue
        if wl.get("lower_is_better"):
            best = min(others, key=others.get)
            t.append(dict(target="%s: hornbeam below every other server" % wl["id"],
                          value=round(h / others[best], 2) if others[best] else None, goal=1.0,
                          met=all(h < v for v in others.values()),
                          detail="hornbeam %.2f, lowest other %s %.2f %s" % (
                              h, best, others[best], wl["unit"])))
        else:
            best = max(others, key=others.get)
            t.append(dict(target="%s: hornbeam ahead of every other server" % wl["id"],
                          value=round(h / others[best], 2) if others[best] else None, goal=1.0,
                          met=all(h > v for v in others.values()),
                          detail="hornbeam %.0f, best other %s %.0f %s" % (
                              h, best, others[best], wl["unit"])))
    return t


def table(summary, wls, cfg):
    lines = []
    for wl in wls:
        s = summary.get(wl["id"])
        if not s:
            continue
        lines.append("")
        if wl["tool"] == "wsload-idle":
            lines.append("== %s: %s (median of %d round%s) ==" % (
                wl["id"], wl["title"], cfg.rounds, "s" if cfg.rounds > 1 else ""))
            lines.append("%-10s %9s %10s %10s %10s %10s %8s %8s %7s" % (
                "server", "KB/socket", "RSS before", "RSS after", "opened", "open s",
                "errors", "checked", "vs hb"))
            for server in wl["servers"]:
                e = s.get(server)
                if not e:
                    continue
                row = "%-10s %9s %7.1f MB %7.1f MB %10d %10s %8d %8s %7s" % (
                    server, "-" if e["kb_per_socket"] is None else "%.1f" % e["kb_per_socket"],
                    e["rss_before_mb"] or 0, e["rss_after_mb"] or 0, e["opened_min"],
                    "-" if e["open_s"] is None else "%.1f" % e["open_s"], e["errors"],
                    "%d/%d" % (e["check_ok"], e["checked"]), fmt_ratio(e["ratio_to_hornbeam"]))
                if e["closed_by_server"]:
                    row += "  (!) %d socket(s) closed by the server while held" % e["closed_by_server"]
                if e["failed_rounds"]:
                    row += "  (%d round(s) failed)" % e["failed_rounds"]
                if e["server_died"]:
                    row += "  (server died!)"
                lines.append(row)
            continue
        gen = ("wsload echo -c%d" % wl["conns"]) if wl["tool"] == "wsload-echo" else "wrk -t2 -c%d" % wl["conns"]
        lines.append("== %s: %s (%s, median of %d round%s) ==" % (
            wl["id"], wl["title"], gen, cfg.rounds, "s" if cfg.rounds > 1 else ""))
        lines.append("%-10s %10s %9s %9s %8s %10s %7s" % (
            "server", wl["unit"], "p50", "p99", "errors", "peak RSS", "vs hb"))
        for server in wl["servers"]:
            e = s.get(server)
            if not e:
                continue
            row = "%-10s %10s %9s %9s %8d %7.1f MB %7s" % (
                server, "-" if e["rps"] is None else "{:,.0f}".format(e["rps"]),
                fmt_ms(e["p50_ms"]), fmt_ms(e["p99_ms"]), e["errors"], e["peak_rss_mb"],
                fmt_ratio(e["ratio_to_hornbeam"]))
            if e["stalled_rounds"] and not e["no_response_rounds"]:
                row += "  (!) up to %d of %d connections stalled (%d round(s))" % (
                    e["stalled_connections"], wl["conns"], e["stalled_rounds"])
            if e["no_response_rounds"]:
                row += "  (no response at all in %d round(s))" % e["no_response_rounds"]
            if e["failed_rounds"]:
                row += "  (%d round(s) failed)" % e["failed_rounds"]
            if e["server_died"]:
                row += "  (server died!)"
            lines.append(row)
    return "\n".join(lines)


def cpu_table(summary, wls):
    lines = ["", "== server CPU seconds during the measured window (median), root process "
             "vs its children; us per request or message =="]
    lines.append("%-10s %-10s %8s %9s %9s %8s %8s" % (
        "workload", "server", "root", "children", "loadgen", "others", "us/op"))
    for wl in wls:
        if wl["tool"] == "wsload-idle":
            continue
        for server, e in (summary.get(wl["id"]) or {}).items():
            if e.get("cpu_root_s") is None:
                continue
            tot = e["cpu_root_s"] + e["cpu_children_s"]
            per = (tot / (e["requests"] / max(1, e["rounds"])) * 1e6) if e.get("requests") else None
            lines.append("%-10s %-10s %8.2f %9.2f %9.2f %8.2f %8s" % (
                wl["id"], server, e["cpu_root_s"], e["cpu_children_s"],
                e["loadgen_cpu_s"] or 0, e["others_cpu_s"] or 0,
                "-" if per is None else "%.0f" % per))
    return "\n".join(lines)


def versions(cfg):
    def sh(argv):
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            o = (cp.stdout + cp.stderr).strip()
            return o.splitlines()[0] if o else ""
        except Exception as e:  # noqa: BLE001 - a version string only
            return "unknown (%s)" % e

    v = {
        "hornbeam": sh([cfg.hornbeam, "--version"]),
        "hornbeam_git": sh(["git", "-C", REPO, "rev-parse", "HEAD"]),
        "hornbeam_git_dirty_files": len(subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain"], capture_output=True,
            text=True).stdout.splitlines()),
        "go": sh(["go", "version"]),
        "python": sh([PY, "--version"]),
    }
    for pkg in ("python3-uvicorn", "python3-hypercorn", "daphne", "python3-fastapi",
                "python3-starlette", "python3-websockets", "python3-wsproto", "python3-h11",
                "python3-twisted", "python3-autobahn", "python3-uvloop", "wrk"):
        v[pkg] = sh(["dpkg-query", "-W", "-f=${Version}", pkg]) or "not installed"
    return v


class AsgiProcs(Procs):
    def start(self, argv, log, cwd=None, env=None, stdout=None, stdin_pipe=False):
        p = subprocess.Popen(argv, cwd=cwd, env=env,
                             stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                             stdout=stdout if stdout is not None else log,
                             stderr=log, start_new_session=True)
        self.live[p.pid] = p
        with open(self.pidfile, "a") as f:
            f.write("%d\n" % p.pid)
        return p


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--print", metavar="JSON", help="print the tables of an earlier run's JSON, and exit")
    ap.add_argument("--hornbeam")
    ap.add_argument("--wsload")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "asgi-latest.json"))
    ap.add_argument("--tmp")
    ap.add_argument("--pidfile")
    cfg = ap.parse_args()
    if cfg.print:
        with open(cfg.print) as f:
            doc = json.load(f)
        cfg.rounds = doc["config"]["rounds"]
        wls = doc["workloads"]
        print("%s, %s rounds; loadavg %s -> %s" % (doc["generated"], cfg.rounds,
              " ".join(doc["machine"]["loadavg_at_start"]), " ".join(doc["machine"]["loadavg_at_end"])))
        print(table(doc["summary"], wls, cfg))
        print(cpu_table(doc["summary"], wls))
        print("\n== targets (issue #14 item 10) ==")
        for t in doc["targets"]:
            print("%-4s %-48s %-6s (goal %s) %s" % ("MET" if t["met"] else "MISS", t["target"],
                                                   t["value"], t["goal"], t["detail"]))
        return
    if not (cfg.hornbeam and cfg.wsload and cfg.tmp and cfg.pidfile):
        ap.error("--hornbeam, --wsload, --tmp and --pidfile are required")

    env = os.environ.get
    cfg.rounds = int(env("BENCH_ROUNDS", 1 if cfg.quick else 2))
    cfg.warmup = int(env("BENCH_WARMUP", 1 if cfg.quick else 2))
    cfg.duration = int(env("BENCH_DURATION", 2 if cfg.quick else 5))
    cfg.workers = int(env("BENCH_WORKERS", 2))
    cfg.ws_conns = int(env("BENCH_WS_CONNS", 64))
    cfg.ws_size = int(env("BENCH_WS_SIZE", 32))
    cfg.ws_idle = int(env("BENCH_WS_IDLE", 10000))
    cfg.ws_sources = int(env("BENCH_WS_SOURCES", 4))
    cfg.ws_settle = float(env("BENCH_WS_SETTLE", 3))
    cfg.ws_idle_timeout = int(env("BENCH_WS_IDLE_TIMEOUT", 180))
    cfg.hornbeam_args = env("BENCH_HORNBEAM_ARGS", "").split()
    cfg.wrk_timeout = 2
    only_servers = set(filter(None, env("BENCH_SERVERS", "").split(",")))
    only_wls = set(filter(None, env("BENCH_WORKLOADS", "").split(",")))

    # The servers and wsload inherit this: 10,000 sockets need more than the
    # usual soft limit of 1024 descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile < cfg.ws_idle + 200:
        print("warning: descriptor limit %d is below the %d idle WebSockets (+200): "
              "raise the hard limit (ulimit -Hn) or lower BENCH_WS_IDLE" % (nofile, cfg.ws_idle),
              flush=True)

    specs = server_specs(cfg)
    wls = workloads(cfg)
    for w in wls:
        w["servers"] = [s for s in SERVER_ORDER if s in specs]
    wls = bench.select(wls, only_servers, only_wls)

    os.makedirs(os.path.join(cfg.tmp, "logs"), exist_ok=True)
    procs = AsgiProcs(cfg.pidfile)
    bench.exit_on_signals()
    plan = bench.make_plan(cfg.rounds, wls)
    print("plan: %d rounds x %d workloads = %d runs; warm-up %ds, measure %ds; %d workers "
          "each; WebSocket echo %d connections x %d bytes; %d idle WebSockets"
          % (cfg.rounds, len(wls), len(plan), cfg.warmup, cfg.duration, cfg.workers,
             cfg.ws_conns, cfg.ws_size, cfg.ws_idle), flush=True)

    started = time.time()
    load_at_start = open("/proc/loadavg").read().split()[:3]
    runs = []
    try:
        for i, (rnd, wl, server) in enumerate(plan):
            r = one_run(cfg, procs, specs, wl, server, rnd + 1, cfg.tmp)
            runs.append(r)
            if r.get("failed"):
                what = r["failed"]
            elif wl["tool"] == "wsload-idle":
                what = "%6s KB/socket  opened %d in %ss  errors %d  check %s/%s  rss %.0f -> %.0f MB" % (
                    "-" if r.get("kb_per_socket") is None else "%.1f" % r["kb_per_socket"],
                    r.get("opened", 0), r.get("open_s"), r.get("errors", 0), r.get("check_ok"),
                    r.get("checked"), r.get("rss_before_bytes", 0) / 2**20,
                    r.get("rss_after_bytes", 0) / 2**20)
            else:
                what = "%10.0f %s  p99 %-8s errors %-6d rss %.0f MB cpu %s/%s" % (
                    r.get("rps", 0), wl["unit"], fmt_ms(r.get("p99_ms")), r.get("errors", 0),
                    r.get("peak_rss_bytes", 0) / 2**20, r["cpu_s"]["root"], r["cpu_s"]["children"])
            if r.get("check", "ok") != "ok":
                what += "  CHECK: " + r["check"][:120]
            print("[%3d/%d %5.0fs] round %d %-10s %-10s %s" % (
                i + 1, len(plan), time.time() - started, rnd + 1, wl["id"], server, what),
                flush=True)
    finally:
        procs.kill_all()

    summary = summarize(runs, wls)
    tg = targets(summary, wls)
    print(table(summary, wls, cfg))
    print(cpu_table(summary, wls))
    print("\n== targets (issue #14 item 10) ==")
    for t in tg:
        print("%-4s %-48s %-6s (goal %s) %s" % ("MET" if t["met"] else "MISS", t["target"],
                                               t["value"], t["goal"], t["detail"]))
    problems = bench.problems_of(runs, bench.PROBLEM_KEYS + (
        "errors", "error_sample", "dial_errors", "close_sample", "check_errors"), errors_count=True)
    if problems:
        print("\n== problems seen (server logs in %s, kept with KEEP_LOGS=1) ==" % cfg.tmp)
        for p in problems:
            print(json.dumps(p)[:600])

    doc = dict(
        generated=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        title="hornbeam vs other ASGI servers (higher is better, except KB/socket)",
        subtitle="%d workers each (daphne: %d processes on one socket)" % (cfg.workers, cfg.workers),
        quick=cfg.quick,
        wall_s=round(time.time() - started, 1),
        machine=bench.machine(load_at_start),
        config=dict(rounds=cfg.rounds, warmup_s=cfg.warmup, duration_s=cfg.duration,
                    workers=cfg.workers, ws_conns=cfg.ws_conns, ws_size=cfg.ws_size,
                    ws_idle=cfg.ws_idle, ws_sources=cfg.ws_sources, ws_settle_s=cfg.ws_settle,
                    wrk_timeout_s=cfg.wrk_timeout, nofile=nofile,
                    hornbeam_args=cfg.hornbeam_args),
        versions=versions(cfg),
        servers={s: dict(processes=specs[s]["procs"],
                         command=" ".join(specs[s]["cmd"]("MODULE", "127.0.0.1:PORT")))
                 for s in SERVER_ORDER},
        workloads=wls,
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
