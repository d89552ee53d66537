#!/bin/sh
# The long soak: at least 100,000 transfers (however long that takes), fault
# rounds through the preloaded fault shim, then the summary.
#   tests/soak/run_long.sh [build dir] [transfers] [--gpu]
# --gpu: regions in GPU memory too (needs a CUDA device; skips without one).
# HX_SEED=<seed> repeats a run; a failure prints the round to replay with
#   HX_SEED=<seed> build/tests/soak/soak --round <r> --rounds 1
set -eu
build=${1:-build}
transfers=${2:-100000}
gpu=${3:-}
soak=$build/tests/soak/soak
shim=$build/tests/fault/libtcpx_fault.so
[ -x "$soak" ] || { echo "no $soak: build the soak target first" >&2; exit 2; }
[ -f "$shim" ] || { echo "no $shim: build the tcpx_fault target first" >&2; exit 2; }
echo "soak: $transfers transfers${gpu:+ (host and GPU memory)}, $(nproc) cores, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ)"
LD_PRELOAD=$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim") exec "$soak" --transfers "$transfers" $gpu
