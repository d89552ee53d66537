#!/bin/sh
# netns.sh - two "hosts" in network namespaces joined by a veth pair.
#
#   netns.sh /path/to/it_transfers [time-scale]
#
# time-scale (default 1) stretches the per-run timeout for slow
# (sanitizer) builds; it is passed on to the programs as HX_TIME_SCALE.
#
# Creates namespaces tcpxA<pid> (198.18.0.2/24) and tcpxB<pid> (198.18.0.1/24)
# - addresses from the benchmarking range 198.18.0.0/15 only - joined by a
# veth pair, then runs it_transfers --role B (acceptor) in one and --role A
# (initiator) in the other with several channel/chunk settings; the two
# sides bootstrap through a unix socket in a temporary directory and check
# every byte in both directions. Everything is removed on exit.
# Exit 77 (skip) when namespaces cannot be made here.
set -u

BIN=${1:?usage: netns.sh /path/to/it_transfers [time-scale]}
SCALE=${2:-1}
RUN_TIMEOUT=$((90 * SCALE))
export HX_TIME_SCALE="$SCALE"
NS_A=tcpxA$$
NS_B=tcpxB$$
VA=txa$$
VB=txb$$
ADDR_A=198.18.0.2
ADDR_B=198.18.0.1
DIR=
PIDS=

skip() {
    echo "SKIP: network namespaces unavailable: $*"
    exit 77
}

cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
    ip link del "$VA" 2>/dev/null
    [ -n "$DIR" ] && rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ -x "$BIN" ] || { echo "FAIL: $BIN is not an executable"; exit 1; }
command -v ip >/dev/null 2>&1 || skip "no 'ip' command (install iproute2)"
[ "$(id -u)" = 0 ] || skip "not root (uid $(id -u))"
DIR=$(mktemp -d /tmp/tcpx-netns.XXXXXX) || { echo "FAIL: mktemp"; exit 1; }

err=$(ip netns add "$NS_A" 2>&1) || skip "ip netns add: $err"
err=$(ip netns add "$NS_B" 2>&1) || skip "ip netns add: $err"
err=$(ip link add "$VA" type veth peer name "$VB" 2>&1) || skip "veth: $err"
err=$(ip link set "$VA" netns "$NS_A" 2>&1) || skip "move veth: $err"
err=$(ip link set "$VB" netns "$NS_B" 2>&1) || skip "move veth: $err"
err=$(ip netns exec "$NS_A" true 2>&1) || skip "ip netns exec: $err"

setup() {
    ip -n "$NS_A" link set lo up &&
    ip -n "$NS_B" link set lo up &&
    ip -n "$NS_A" addr add "$ADDR_A/24" dev "$VA" &&
    ip -n "$NS_B" addr add "$ADDR_B/24" dev "$VB" &&
    ip -n "$NS_A" link set "$VA" up &&
    ip -n "$NS_B" link set "$VB" up
}
setup || { echo "FAIL: could not configure the veth pair"; exit 1; }

# wait until both ends are up (veth carrier)
i=0
while [ $i -lt 50 ]; do
    if ip -n "$NS_A" link show "$VA" | grep -q 'state UP' &&
       ip -n "$NS_B" link show "$VB" | grep -q 'state UP'; then
        break
    fi
    i=$((i + 1))
    sleep 0.1
done

SEED=${HX_SEED:-$(( ($$ * 7919 + $(date +%s)) % 1000000007 ))}
echo "netns: $NS_A ($ADDR_A) <-> $NS_B ($ADDR_B), seed $SEED (rerun with HX_SEED=$SEED)"

fail=0
n=0
# channels chunk extra-args
for cfg in "1 65536 --small" "4 0" "8 65536 --small" "2 16384 --small"; do
    set -- $cfg
    ch=$1
    chunk=$2
    shift 2
    n=$((n + 1))
    rd="$DIR/r$n"
    mkdir -p "$rd"
    ip netns exec "$NS_B" timeout -s KILL "$RUN_TIMEOUT" "$BIN" --role B --bind "$ADDR_B" --rendezvous "$rd" \
        --seed "$SEED" --channels "$ch" --chunk "$chunk" "$@" &
    pb=$!
    ip netns exec "$NS_A" timeout -s KILL "$RUN_TIMEOUT" "$BIN" --role A --bind "$ADDR_A" --rendezvous "$rd" \
        --seed "$SEED" --channels "$ch" --chunk "$chunk" "$@" &
    pa=$!
    PIDS="$pa $pb"
    wait "$pa"
    ra=$?
    wait "$pb"
    rb=$?
    PIDS=
    if [ $ra -ne 0 ] || [ $rb -ne 0 ]; then
        echo "FAIL: netns run channels=$ch chunk=$chunk $*: side A exit $ra, side B exit $rb" \
             "(137 = killed by the ${RUN_TIMEOUT} s timeout); HX_SEED=$SEED"
        fail=1
    else
        echo "ok: netns run channels=$ch chunk=$chunk $*"
    fi
done

if [ $fail -ne 0 ]; then
    exit 1
fi
echo "PASS: transfers between two network namespaces"
exit 0
