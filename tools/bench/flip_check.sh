#!/bin/sh
# ctest: one bit flipped in the middle of one message must fail the run,
# caught by the whole-message check (host: CRC-32C; GPU memory: the compare
# kernel; the stamps alone would miss it).
# Usage: flip_check.sh TCPX_BENCH --op send|write [more tcpx-bench options]
# Exits 77 (skip) when the options ask for GPU memory and there is none.
set -u
bench=$1; shift
out=$("$bench" "$@" --time 0.2 --no-ceiling --flip-bit-at 7 2>&1)
rc=$?
if echo "$out" | grep -q -- "--mem cuda: .*cannot be used\|--mem cuda: .*no CUDA"; then
  echo "SKIP: no GPU here:"; echo "$out" | grep -- "--mem cuda" | head -1; exit 77
fi
if [ $rc -eq 0 ]; then
  echo "FAIL: tcpx-bench exited 0 with a flipped bit:"; echo "$out"; exit 1
fi
if ! echo "$out" | grep -q "CRC-32C of\|differs (between the stamps)"; then
  echo "FAIL: the flipped bit was not reported as a whole-message mismatch:"; echo "$out"; exit 1
fi
echo "$out" | grep "MISMATCH" | head -3
echo "flip check: caught (exit $rc)"
