#!/usr/bin/env python3
"""nixl_python_check.py - NIXL's Python API (nixl._api.nixl_agent) driving
backend "TCPX" between two processes, with numpy buffers.

Initiator I and target T each create nixl_agent(..., backends=["TCPX"]),
register one numpy buffer and swap metadata (get_agent_metadata /
add_remote_agent) through a pipe. Then I:
  1. WRITEs 200 blocks of random sizes at random places of the first half of
     T's buffer, with a notification; T checks every byte when it arrives;
  2. READs 200 other blocks from the second half and checks every byte;
  3. posts the WRITE handle again with new data and a new notification;
  4. sends a standalone notification (send_notif);
  5. WRITEs a block beyond T's registration: refused, T untouched.
Exit status 0 when everything matched; 77 (skipped) when NIXL's python
package, numpy or the TCPX plugin is not to be found.

  NIXL_PLUGIN_DIR=<dir with libplugin_TCPX.so> PYTHONPATH=<NIXL's python dir> \
      python3 nixl_python_check.py [seed]
"""
import multiprocessing as mp
import os
import sys
import time

try:
    import numpy as np
except ImportError as e:  # NIXL's python API needs numpy buffers here
    print(f"SKIP: numpy cannot be imported ({e}): install python3-numpy", flush=True)
    sys.exit(77)

SIZE = 8 << 20
BLOCKS = 200
TIMEOUT_S = 60


def fail(role, msg):
    print(f"[nixl_python_check/{role}] FAIL: {msg}", flush=True)
    sys.exit(1)


def plan(seed, salt):
    """BLOCKS (local offset, remote offset, length) triples, non-overlapping on each side."""
    rng = np.random.default_rng([seed, salt])
    lens = rng.integers(1, 20000, size=BLOCKS)
    out, lcur, rcur = [], 0, 0
    rperm = rng.permutation(BLOCKS)  # remote places in another order than local ones
    roffs = {}
    for i in rperm:
        rcur += int(rng.integers(0, 512))
        roffs[int(i)] = rcur
        rcur += int(lens[i])
    for i in range(BLOCKS):
        lcur += int(rng.integers(0, 512))
        out.append((lcur, roffs[i], int(lens[i])))
        lcur += int(lens[i])
    assert lcur <= SIZE and rcur <= SIZE
    return out


def pattern(seed, salt, n):
    return np.random.default_rng([seed, salt, 7]).integers(0, 256, size=n, dtype=np.uint8)


def make_agent(name):
    from nixl._api import nixl_agent, nixl_agent_config

    agent = nixl_agent(name, nixl_agent_config(enable_prog_thread=False, backends=["TCPX"]))
    if "TCPX" not in agent.backends:
        fail(name, f"backend TCPX was not created (plugins found: {agent.get_plugin_list()})")
    return agent


def wait_notif(agent, role, peer, want):
    end = time.monotonic() + TIMEOUT_S
    while time.monotonic() < end:
        if agent.check_remote_xfer_done(peer, want, tag_is_prefix=False):
            return
        time.sleep(0.0005)
    fail(role, f"no notification {want!r} from {peer} within {TIMEOUT_S} s")


def wait_xfer(agent, role, handle, what):
    end = time.monotonic() + TIMEOUT_S
    while time.monotonic() < end:
        st = agent.check_xfer_state(handle)
        if st == "DONE":
            return
        if st == "ERR":
            fail(role, f"{what}: transfer failed")
    fail(role, f"{what}: not done within {TIMEOUT_S} s")


def check_blocks(role, what, buf, offs_lens, expect_of):
    for i, (off, n) in enumerate(offs_lens):
        want = expect_of(i, n)
        got = buf[off:off + n]
        if not np.array_equal(got, want):
            bad = int(np.nonzero(got != want)[0][0])
            fail(role, f"{what}: block {i} ({n} bytes at {off}) differs at byte {bad}")


def target(conn, seed):
    agent = make_agent("T")
    buf = pattern(seed, 1, 2 * SIZE)  # I writes into the first half and reads the second
    agent.register_memory([(buf.ctypes.data, buf.nbytes, 0, "")], "DRAM")
    conn.send((agent.get_agent_metadata(), buf.ctypes.data))
    agent.add_remote_agent(conn.recv())
    w = plan(seed, 2)
    for rnd, note in ((1, b"written-1"), (2, b"written-2")):
        wait_notif(agent, "T", "I", note)
        check_blocks("T", f"WRITE round {rnd}", buf, [(r, n) for _, r, n in w],
                     lambda i, n: pattern(seed, 100 * rnd + i, n))
        conn.send("checked")
    wait_notif(agent, "T", "I", b"standalone from I")
    conn.send("got notif")
    before = buf.copy()
    if conn.recv() != "refused?":
        fail("T", "bootstrap")
    if not np.array_equal(before, buf):
        fail("T", "the refused WRITE changed memory")
    conn.send("untouched")
    if conn.recv() != "bye":
        fail("T", "bootstrap")


def initiator(conn, seed):
    agent = make_agent("I")
    buf = np.zeros(SIZE, dtype=np.uint8) + 0x5A
    agent.register_memory([(buf.ctypes.data, buf.nbytes, 0, "")], "DRAM")
    md, base = conn.recv()
    conn.send(agent.get_agent_metadata())
    peer = agent.add_remote_agent(md)
    if isinstance(peer, bytes):
        peer = peer.decode()
    if peer != "T":
        fail("I", f"add_remote_agent returned {peer!r}")

    w = plan(seed, 2)
    local = agent.get_xfer_descs([(buf.ctypes.data + l, n, 0) for l, _, n in w], "DRAM")
    remote = agent.get_xfer_descs([(base + r, n, 0) for _, r, n in w], "DRAM")
    for i, (l, _, n) in enumerate(w):
        buf[l:l + n] = pattern(seed, 100 + i, n)
    h = agent.initialize_xfer("WRITE", local, remote, "T", b"written-1", backends=["TCPX"])
    if agent.transfer(h) == "ERR":
        fail("I", "WRITE post failed")
    wait_xfer(agent, "I", h, "WRITE")
    if conn.recv() != "checked":
        fail("I", "bootstrap")

    r = plan(seed, 3)
    rl = agent.get_xfer_descs([(buf.ctypes.data + l, n, 0) for l, _, n in r], "DRAM")
    rr = agent.get_xfer_descs([(base + SIZE + o, n, 0) for _, o, n in r], "DRAM")
    rh = agent.initialize_xfer("READ", rl, rr, "T", backends=["TCPX"])
    if agent.transfer(rh) == "ERR":
        fail("I", "READ post failed")
    wait_xfer(agent, "I", rh, "READ")
    whole = pattern(seed, 1, 2 * SIZE)
    check_blocks("I", "READ", buf, [(l, n) for l, _, n in r], lambda i, n: whole[SIZE + r[i][1]:SIZE + r[i][1] + n])
    rh.release()

    # The WRITE request again, new data, new notification.
    for i, (l, _, n) in enumerate(w):
        buf[l:l + n] = pattern(seed, 200 + i, n)
    if agent.transfer(h, b"written-2") == "ERR":
        fail("I", "WRITE repost failed")
    wait_xfer(agent, "I", h, "WRITE again")
    if conn.recv() != "checked":
        fail("I", "bootstrap")
    h.release()

    agent.send_notif("T", b"standalone from I")
    if conn.recv() != "got notif":
        fail("I", "bootstrap")

    # Beyond T's registration: the agent refuses to build the request.
    bad_l = agent.get_xfer_descs([(buf.ctypes.data, 4096, 0)], "DRAM")
    bad_r = agent.get_xfer_descs([(base + 2 * SIZE - 100, 4096, 0)], "DRAM")
    try:
        bh = agent.initialize_xfer("WRITE", bad_l, bad_r, "T", backends=["TCPX"])
        st = agent.transfer(bh)
        if st != "ERR":
            st = agent.check_xfer_state(bh)
            while st == "PROC":
                st = agent.check_xfer_state(bh)
        if st != "ERR":
            fail("I", "a WRITE beyond T's registration was not refused")
    except Exception as e:  # nixl raises on a request it cannot build
        print(f"[nixl_python_check/I] refused as expected: {e}", flush=True)
    conn.send("refused?")
    if conn.recv() != "untouched":
        fail("I", "bootstrap")
    conn.send("bye")
    print("[nixl_python_check/I] WRITE, READ, repost, send_notif, refusal: every byte checked", flush=True)


def main():
    try:
        import nixl._api  # noqa: F401
    except ImportError as e:
        print(f"SKIP: NIXL's python package is not importable ({e}); set PYTHONPATH", flush=True)
        return 77
    plugdir = os.environ.get("NIXL_PLUGIN_DIR", "")
    if not plugdir or not os.path.exists(os.path.join(plugdir, "libplugin_TCPX.so")):
        print(f"SKIP: no libplugin_TCPX.so in NIXL_PLUGIN_DIR={plugdir!r}", flush=True)
        return 77
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else int(time.time_ns() % (1 << 31))
    print(f"[nixl_python_check] seed {seed} (pass it as the argument to repeat)", flush=True)
    ctx = mp.get_context("spawn")  # each process imports NIXL afresh: no fork of its threads
    a, b = ctx.Pipe()
    procs = [ctx.Process(target=target, args=(a, seed)), ctx.Process(target=initiator, args=(b, seed))]
    for p in procs:
        p.start()
    end = time.monotonic() + 3 * TIMEOUT_S
    for p in procs:
        p.join(max(1, end - time.monotonic()))
    rc = 0
    for p, name in zip(procs, "TI"):
        if p.is_alive():
            p.kill()
            print(f"[nixl_python_check] FAIL: {name} did not finish in time", flush=True)
            rc = 1
        elif p.exitcode != 0:
            print(f"[nixl_python_check] FAIL: {name} exited with {p.exitcode}", flush=True)
            rc = 1
    if rc == 0:
        print("[nixl_python_check] OK", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
