#!/bin/sh
# ctest: tcpx-bench --json, then plot.py into a PNG; checks that the JSON
# holds one row per size and that a PNG came out. Skips (77) without
# matplotlib. Usage: plot_check.sh TCPX_BENCH PYTHON PLOT_PY WORKDIR
set -eu
bench=$1 py=$2 plot=$3 dir=$4
if ! "$py" -c 'import matplotlib' 2>/dev/null; then
  echo "SKIP: no matplotlib for $py (Debian: apt-get install python3-matplotlib)"
  exit 77
fi
mkdir -p "$dir"
"$bench" --sizes 4K,64K,1M --time 0.2 --ceiling-time 0.2 --inflight 1 --json "$dir/run.json" >/dev/null
"$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
assert [r["size"] for r in rows] == [4096, 65536, 1048576], rows
assert all(r["errors"] == 0 and r["gbps"] > 0 and 0 < r["p50_us"] <= r["p99_us"] for r in rows), rows
assert d["ceiling_gbps"] and d["ceiling_gbps"] > 0 and d["ceiling_hot_gbps"] > 0, d
' "$dir/run.json"
rm -f "$dir/run.png"
"$py" "$plot" "$dir/run.json" "$dir/run.png" --title "plot check"
head -c 8 "$dir/run.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" || { echo "FAIL: $dir/run.png is not a PNG"; exit 1; }
echo "plot check: OK ($dir/run.png)"
