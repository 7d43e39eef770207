#!/usr/bin/python3
"""Render results/latest.json (from bench.py) as an SVG chart: requests/s,
bars grouped per workload, one bar per server. The workloads differ by orders
of magnitude (a 13-byte hello vs a 1 MB upload), so each group is a panel
with its own linear axis starting at zero; each bar is labelled with its
value and its ratio to hornbeam. Python standard library only.

    /usr/bin/python3 chart.py results/latest.json results/latest.svg
"""

import json
import sys
from xml.sax.saxutils import escape

COLORS = {
    "hornbeam": "#2e7d32",
    "gunicorn-sync": "#1565c0",
    "gunicorn-gthread": "#64b5f6",
    "uwsgi": "#ef6c00",
    "waitress": "#8e24aa",
    "gohello": "#9e9e9e",
    "uvicorn": "#1565c0",
    "hypercorn": "#ef6c00",
    "daphne": "#8e24aa",
}
ORDER = list(COLORS)


def nice_max(v):
    """A round axis maximum >= v."""
    if v <= 0:
        return 1.0
    mag = 10 ** len(str(int(v))) / 10
    for m in (1, 1.2, 1.6, 2, 2.4, 3.2, 4, 6, 8, 10):  # /4 gives round ticks
        if m * mag >= v:
            return m * mag
    return 10 * mag


def short(v):
    if v >= 10000:
        return "%.0fk" % (v / 1000)
    if v >= 1000:
        return ("%.2fk" % (v / 1000)).replace("0k", "k").replace(".0k", "k")
    return "%.0f" % v


def render(doc):
    summary = doc["summary"]
    wls = [w for w in doc["workloads"] if summary.get(w["id"])]
    present = [k for k in ORDER if any(k in summary[w["id"]] for w in wls)]
    cols = 3
    rows = (len(wls) + cols - 1) // cols
    pw, ph = 400, 300  # panel size
    top = 92
    W, H = cols * pw + 20, top + rows * ph + 40
    out = []
    a = out.append
    a('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
      'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">' % (W, H, W, H))
    a('<rect width="100%" height="100%" fill="white"/>')
    cfg = doc.get("config", {})
    a('<text x="12" y="22" font-size="16" font-weight="bold">%s</text>' % escape(doc.get(
        "title", "hornbeam vs other WSGI servers: requests/s (higher is better)")))
    a('<text x="12" y="40" fill="#444">%s; %s; '
      'median of %s round(s), %ss each; %s CPUs shared with the load generator</text>' % (
          escape(doc.get("generated", "")), escape(doc.get("subtitle", "%s workers each (waitress: "
                                                           "1 process x %s threads)" % (
                                                               cfg.get("workers"), cfg.get("threads")))),
          cfg.get("rounds"), cfg.get("duration_s"), doc.get("machine", {}).get("cpus")))
    # legend
    x = 12
    for s in present:
        a('<rect x="%d" y="52" width="12" height="12" fill="%s"/>' % (x, COLORS[s]))
        a('<text x="%d" y="62">%s</text>' % (x + 16, s + (" (bare Go, ceiling)" if s == "gohello" else "")))
        x += 30 + 7 * len(s) + (105 if s == "gohello" else 0)
    a('<text x="12" y="80" fill="#666">labels: %s above the bar; below it, this server\'s '
      'value / hornbeam\'s; each panel has its own scale; "stalls": some connections got no '
      'answer for the whole measurement</text>' % ("the value" if doc.get("title") else "req/s"))

    for i, w in enumerate(wls):
        px, py = 10 + (i % cols) * pw, top + (i // cols) * ph
        s = summary[w["id"]]
        key = w.get("value", "rps")
        servers = [k for k in ORDER if k in s and s[k].get(key) is not None]
        vmax = nice_max(1.08 * max([s[k][key] for k in servers] + [1]))
        left, right, ptop, pbot = px + 52, px + pw - 14, py + 36, py + ph - 46
        a('<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>' % (
            px + 6, py + 16, escape(w["id"])))
        a('<text x="%d" y="%d" fill="#444">%s</text>' % (
            px + 6, py + 29, escape((w["title"] + (" (%s)" % w["unit"] if w.get("unit") else ""))[:66])))
        for t in range(5):
            v = vmax * t / 4
            y = pbot - (pbot - ptop) * t / 4
            a('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>' % (
                left, y, right, y, "#999" if t == 0 else "#e5e5e5"))
            a('<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>' % (
                left - 4, y + 4, short(v)))
        n = max(1, len(servers))
        slot = (right - left) / n
        bw = min(44, slot * 0.7)
        hb = (s.get("hornbeam") or {}).get(key)
        for j, k in enumerate(servers):
            v = s[k][key]
            h = (pbot - ptop) * v / vmax
            bx = left + slot * j + (slot - bw) / 2
            a('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
              '<title>%s: %.1f %s, p99 %s ms</title></rect>' % (
                  bx, pbot - h, bw, h, COLORS.get(k, "#333"), k, v, w.get("unit", "req/s"),
                  "-" if s[k].get("p99_ms") is None else "%.2f" % s[k]["p99_ms"]))
            a('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>' % (
                bx + bw / 2, pbot - h - 4, (short(v) if v >= 100 else "%.1f" % v)
                + ("" if v else " (stuck)")))
            if hb:
                a('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9" fill="#555">'
                  '%.2fx</text>' % (bx + bw / 2, pbot + 12, v / hb))
            errs = s[k].get("errors") or 0
            note = []
            if errs:
                note.append("%s err" % short(errs))
            if s[k].get("stalled_rounds") and v:
                note.append("stalls")
            if note:
                a('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9" fill="#c62828">'
                  '%s</text>' % (bx + bw / 2, pbot + 23, escape(", ".join(note))))
            a('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9" fill="#333">%s</text>' % (
                bx + bw / 2, pbot + 34, escape(k.replace("gunicorn-", "gu-"))))
    a("</svg>")
    return "\n".join(out) + "\n"


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        doc = json.load(f)
    with open(dst, "w") as f:
        f.write(render(doc))
    print("wrote %s" % dst)


if __name__ == "__main__":
    main()
