#!/usr/bin/env bash
# run_long.sh - the long libFuzzer runs of every decoder harness (issue 11:
# at least 10 million executions each). Too long for CI, so not a ctest;
# docs/RELIABILITY.md ("Fuzzing") records the runs.
#
#   tests/fuzz/run_long.sh [-b BUILD_DIR] [-o OUT_DIR] [-r RUNS] [-s SEED] [TARGET...]
#
#   -b BUILD_DIR  a clang build holding tests/fuzz/fuzz_<t> and fuzz_replay_<t>;
#                 without it the script configures and builds build-fuzz-long/
#                 in the source tree (CC=clang; CMAKE_PREFIX_PATH is passed on
#                 from the environment)
#   -o OUT_DIR    where corpora, artifacts and logs go, OUT_DIR/<t>/ a target
#                 (default: fuzz-long-out/ under the build dir); a target's
#                 earlier OUT_DIR/<t>/ is removed first
#   -r RUNS       executions per target (default 10000000)
#   -s SEED       libFuzzer -seed (default 1)
#   TARGET...     default: conninfo memdesc msg sockhs
#
# Per target: the corpus is seeded with fuzz_replay_<t> -w (64 valid
# encodings) and libFuzzer also reads the committed regression corpus
# tests/fuzz/corpus/<t>/ (never written to); the run is
#   fuzz_<t> -runs=RUNS -seed=SEED -max_len=<per target> -timeout=10
# Then a table: target, executions, exec/s (over the wall time), wall time,
# findings (crash-, leak-, timeout-, oom- files; a libFuzzer exit status
# other than 0 counts as one), edges covered, and the corpus libFuzzer kept
# (units/bytes). Exit status 1 on any finding.
# On a shared machine run it under nice:
#   nice -n 10 tests/fuzz/run_long.sh -b build-fuzz
set -u

src=$(cd "$(dirname "$0")/../.." && pwd)
build="" out="" runs=10000000 seed=1
usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while getopts "b:o:r:s:h" opt; do
    case $opt in
    b) build=$OPTARG ;;
    o) out=$OPTARG ;;
    r) runs=$OPTARG ;;
    s) seed=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(conninfo memdesc msg sockhs)

# Largest input worth trying per target: a message of TCPX_CTRL_MSG_MAX, a
# connection info of the most channels, a descriptor, a handle.
max_len() {
    case $1 in
    conninfo) echo 9000 ;;
    memdesc) echo 128 ;;
    msg) echo 20000 ;;
    sockhs) echo 256 ;;
    *) echo 4096 ;;
    esac
}

if [ -z "$build" ]; then
    build=$src/build-fuzz-long
    CC=clang cmake -S "$src" -B "$build" ${CMAKE_PREFIX_PATH:+-DCMAKE_PREFIX_PATH=$CMAKE_PREFIX_PATH} >/dev/null || exit 2
    bins=()
    for t in "${targets[@]}"; do bins+=("fuzz_$t" "fuzz_replay_$t"); done
    make -C "$build" -j"$(nproc)" "${bins[@]}" >/dev/null || exit 2
fi
build=$(cd "$build" && pwd)
[ -n "$out" ] || out=$build/fuzz-long-out
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)

rows=() status=0
for t in "${targets[@]}"; do
    fz=$build/tests/fuzz/fuzz_$t rp=$build/tests/fuzz/fuzz_replay_$t
    if [ ! -x "$fz" ] || [ ! -x "$rp" ]; then
        echo "run_long: $fz or $rp missing (a clang build of the fuzz targets is needed)" >&2
        exit 2
    fi
    dir=$out/$t
    rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts" || exit 2
    "$rp" -w "$dir/corpus" >/dev/null || exit 2
    echo "run_long: fuzz_$t, $runs executions, seed $seed (log: $dir/fuzz.log)"
    t0=$(date +%s.%N)
    "$fz" -runs="$runs" -seed="$seed" -max_len="$(max_len "$t")" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "$dir/corpus" "$src/tests/fuzz/corpus/$t" >"$dir/fuzz.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -1)
    finds=$(find "$dir/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    [ "$rc" -ne 0 ] && [ "$finds" -eq 0 ] && finds=1
    [ "$finds" -ne 0 ] && status=1
    [ "$rc" -ne 0 ] && echo "run_long: fuzz_$t exited with status $rc, see $dir/fuzz.log" >&2
    # libFuzzer's last status line: edges covered and the corpus it kept
    # (units/size; the directory also holds the seeds and superseded units)
    done_line=$(grep -E '^#[0-9]+' "$dir/fuzz.log" | tail -1)
    cov=$(echo "$done_line" | sed -n 's/.* cov: \([0-9]*\) .*/\1/p')
    corp=$(echo "$done_line" | sed -n 's/.* corp: \([^ ]*\) .*/\1/p')
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
    eps=$(awk -v n="${execs:-0}" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
    rows+=("$(printf '%-9s %12s %9s %7s %9s %5s %s' "$t" "${execs:-?}" "$eps" "$secs" "$finds" "${cov:-?}" \
        "${corp:-?}")")
done

printf '%-9s %12s %9s %7s %9s %5s %s\n' target executions exec/s time_s findings cov corpus
for r in "${rows[@]}"; do echo "$r"; done
[ $status -eq 0 ] || echo "run_long: findings: see the artifacts directories under $out" >&2
exit $status
