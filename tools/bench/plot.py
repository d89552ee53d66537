#!/usr/bin/env python3
"""Plot tcpx-bench --json output: GB/s against message size, one line per
memory kind and operation, the raw-TCP ceilings of the run (the table's
working set, and cache-hot) drawn across.

    tcpx-bench --gpu --json run.json
    python3 tools/bench/plot.py run.json run.png [--title TEXT]

Several JSON files may be given before the PNG; their rows are drawn
together (e.g. one run per --op). Needs matplotlib (Debian:
python3-matplotlib). Unreadable input: a sentence and a non-zero exit.
"""
import argparse
import json
import sys


def fmt_size(n):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d%s" % (n >> shift, unit)
    return str(n)


def load(paths):
    rows, ceilings = [], []
    for p in paths:
        try:
            with open(p) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit("plot.py: %s: %s" % (p, e))
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
            sys.exit("plot.py: %s: not tcpx-bench --json output (no \"rows\" list)" % p)
        rows += doc["rows"]
        for key, what in (("ceiling_gbps", "raw TCP ceiling"), ("ceiling_hot_gbps", "cache-hot ceiling")):
            if doc.get(key):
                ceilings.append((doc[key], doc.get("ceiling_streams", 0), what))
    if not rows:
        sys.exit("plot.py: no rows in %s" % ", ".join(paths))
    return rows, ceilings


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="tcpx-bench --json files, then the PNG to write")
    ap.add_argument("--title", default="tcpx-bench")
    a = ap.parse_args()
    if len(a.inputs) < 2 or not a.inputs[-1].endswith(".png"):
        ap.error("give one or more JSON files and then OUT.png")
    rows, ceilings = load(a.inputs[:-1])

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = {}
    for r in rows:
        label = "%s %s" % (r["mem"], r["op"])
        if r.get("blocks", 1) > 1:
            label += " (lists of %d)" % r["blocks"]
        lines.setdefault(label, []).append((r["size"], r["gbps"]))
    fig, ax = plt.subplots(figsize=(8, 5))
    sizes = sorted({r["size"] for r in rows})
    for label, pts in sorted(lines.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    for gbps, streams, what in ceilings:
        ax.axhline(gbps, linestyle="--" if what.startswith("raw") else ":", color="gray")
        ax.annotate("%s, %d streams: %.2f GB/s" % (what, streams, gbps), (sizes[-1], gbps),
                    textcoords="offset points", xytext=(0, 4), ha="right", color="gray", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes)
    ax.set_xticklabels([fmt_size(s) for s in sizes])
    ax.set_xlabel("message size (bytes)")
    ax.set_ylabel("GB/s (10^9 bytes/s)")
    ax.set_title(a.title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(a.inputs[-1], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
