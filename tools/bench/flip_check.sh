#!/bin/sh
# ctest: one bit flipped in the middle of one message must fail the run,
# caught by the whole-message CRC-32C (the stamps alone would miss it).
# Usage: flip_check.sh TCPX_BENCH --op send|write [more tcpx-bench options]
set -u
bench=$1; shift
out=$("$bench" "$@" --time 0.2 --no-ceiling --flip-bit-at 7 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
  echo "FAIL: tcpx-bench exited 0 with a flipped bit:"; echo "$out"; exit 1
fi
if ! echo "$out" | grep -q "CRC-32C of"; then
  echo "FAIL: the flipped bit was not reported as a CRC-32C mismatch:"; echo "$out"; exit 1
fi
echo "$out" | grep "MISMATCH" | head -3
echo "flip check: caught (exit $rc)"
