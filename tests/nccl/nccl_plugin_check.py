#!/usr/bin/env python3
"""NCCL over libnccl-net-tcpxsock.so: correctness and bandwidth on 2 GPUs.

Runs PyTorch distributed (backend nccl) with 2 ranks, one GPU each, on one
host, with NCCL's own P2P/SHM/NVLS paths off so that all traffic goes through
the network plugin:

  1. correctness: all_reduce of random int32 and float32 tensors of several
     sizes checked element for element against the sum computed locally, and
     send/recv both ways checked likewise;
  2. bandwidth: all_reduce and send/recv at several sizes;

first with our plugin (NCCL_NET_PLUGIN=<path>, NCCL_NET=TCPXSock), then with
NCCL's built-in socket transport (NCCL_NET=Socket) for comparison, and prints
a table. It checks that NCCL reported the expected network ("Using network
TCPXSock") and prints the plugin ABI version NCCL loaded.

Exit status: 0 all good; 1 a mismatch, a failed or hung rank, or the wrong
network; 77 fewer than 2 GPUs (nothing was run).

  python3 tests/nccl/nccl_plugin_check.py --plugin build/plugins/nccl/libnccl-net-tcpxsock.so
Options: --transports tcpxsock,socket  --socks 1,4 (TCPX_SOCKS_PER_COMM values for
tcpxsock runs)  --sizes 65536,1048576,...  --iters 20  --timeout 600
--no-loopback (default: NCCL_SOCKET_IFNAME=lo and TCPX_BIND_ADDR=127.0.0.1)
--same-gpu (both ranks on GPU 0: a check on a 1-GPU machine. Each rank gets
its own NCCL_HOSTID, so NCCL takes them for two hosts, accepts the shared GPU
and moves every byte through the network plugin; both transports then share
one GPU, so the bandwidths compare the two transports, not a real setup).
"""
import argparse
import glob
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHECK_ELEMS = [1, 7, 1023, 4096, 65536 + 3, 1 << 20, (4 << 20) + 5]
DEFAULT_SIZES = [64 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20]


# ---------------------------------------------------------------- worker --

def worker(a):
    import torch
    import torch.distributed as dist

    rank, world = a.rank, 2
    gpu = 0 if a.same_gpu else rank
    torch.cuda.set_device(gpu)
    dev = torch.device("cuda", gpu)
    dist.init_process_group("nccl", init_method="tcp://127.0.0.1:%d" % a.port, rank=rank, world_size=world)
    errors = []

    def rand(seed, n, dtype):
        g = torch.Generator().manual_seed(seed)
        if dtype == torch.int32:
            return torch.randint(-(1 << 20), 1 << 20, (n,), generator=g, dtype=torch.int32)
        return torch.randn(n, generator=g, dtype=dtype)

    # 1. correctness
    for dtype in (torch.int32, torch.float32):
        for i, n in enumerate(CHECK_ELEMS):
            seed = 1000 * i + (7 if dtype == torch.int32 else 8)
            mine = rand(seed + rank, n, dtype).to(dev)
            expect = rand(seed, n, dtype) + rand(seed + 1, n, dtype)  # one addition: exact in fp32 too
            dist.all_reduce(mine)
            got = mine.cpu()
            if not torch.equal(got, expect):
                bad = (got != expect).nonzero()
                errors.append("all_reduce %s x %d: %d elements differ, first at %d" %
                              (dtype, n, bad.numel(), int(bad[0][0]) if bad.numel() else -1))
    for i, n in enumerate(CHECK_ELEMS):
        for src in (0, 1):
            data = rand(5000 + 10 * i + src, n, torch.float32)
            if rank == src:
                dist.send(data.to(dev), dst=1 - src)
            else:
                buf = torch.empty(n, dtype=torch.float32, device=dev)
                dist.recv(buf, src=src)
                if not torch.equal(buf.cpu(), data):
                    errors.append("send/recv %d -> %d of %d floats: data differs" % (src, 1 - src, n))
    torch.cuda.synchronize()
    dist.barrier()

    # 2. bandwidth
    results = []
    for size in a.sizes:
        n = size // 4
        t = torch.ones(n, dtype=torch.float32, device=dev)
        for _ in range(3):
            dist.all_reduce(t)
        torch.cuda.synchronize()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(a.iters):
            dist.all_reduce(t)
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / a.iters
        # bus bandwidth of a ring all_reduce: 2(n-1)/n of the data crosses each link
        results.append({"op": "all_reduce", "bytes": size, "us": dt * 1e6,
                        "busbw": size * 2 * (world - 1) / world / dt / 1e9})
        buf = torch.empty(n, dtype=torch.float32, device=dev)
        for it in range(3 + a.iters):
            if it == 3:
                torch.cuda.synchronize()
                dist.barrier()
                t0 = time.perf_counter()
            if rank == 0:
                dist.send(buf, dst=1)
            else:
                dist.recv(buf, src=0)
        torch.cuda.synchronize()
        dist.barrier()  # the sender's time includes the receiver finishing
        dt = (time.perf_counter() - t0) / a.iters
        results.append({"op": "send_recv", "bytes": size, "us": dt * 1e6, "busbw": size / dt / 1e9})
    dist.destroy_process_group()
    if rank == 0 or errors:
        with open(a.out + ".rank%d" % rank, "w") as f:
            json.dump({"errors": errors, "results": results}, f)
    print("rank %d: %d error(s)" % (rank, len(errors)), flush=True)
    return 1 if errors else 0


# ---------------------------------------------------------------- driver --

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def find_plugin(arg):
    if arg:
        return os.path.abspath(arg)
    hits = sorted(glob.glob(os.path.join(REPO, "build*", "plugins", "nccl", "libnccl-net-tcpxsock.so")),
                  key=os.path.getmtime, reverse=True)
    return hits[0] if hits else None


def run_config(a, label, extra_env, expect_net, logdir):
    env = dict(os.environ)
    env.update({
        "NCCL_P2P_DISABLE": "1", "NCCL_SHM_DISABLE": "1", "NCCL_NVLS_ENABLE": "0", "NCCL_IB_DISABLE": "1",
        "NCCL_COLLNET_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1",
        "NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,NET,ENV", "PYTHONUNBUFFERED": "1",
    })
    if a.loopback:
        env.update({"NCCL_SOCKET_IFNAME": "lo", "TCPX_BIND_ADDR": "127.0.0.1"})
    env.update(extra_env)
    port = free_port()
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", label)
    out = os.path.join(logdir, stem + ".json")
    procs, logs = [], []
    for r in (0, 1):
        log = open(os.path.join(logdir, "%s.rank%d.log" % (stem, r)), "w+")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--rank", str(r), "--port", str(port),
               "--out", out, "--iters", str(a.iters), "--sizes", ",".join(map(str, a.sizes))]
        renv = env
        if a.same_gpu:
            cmd.append("--same-gpu")
            # Two "hosts" to NCCL: otherwise it refuses two ranks on one GPU.
            renv = dict(env, NCCL_HOSTID="tcpx-check-host%d" % r)
        procs.append(subprocess.Popen(cmd, env=renv, stdout=log, stderr=subprocess.STDOUT))
        logs.append(log)
    deadline = time.time() + a.timeout
    rcs = [None, None]
    while None in rcs and time.time() < deadline:
        for i, p in enumerate(procs):
            if rcs[i] is None:
                rcs[i] = p.poll()
        if any(rc not in (None, 0) for rc in rcs):
            break  # one rank failed: the other would hang
        time.sleep(0.2)
    for i, p in enumerate(procs):
        if p.poll() is None:
            p.kill()
            p.wait()
        rcs[i] = p.returncode if rcs[i] is None else rcs[i]
    problems, nets, versions, ncclvers = [], set(), set(), set()
    for r, log in enumerate(logs):
        log.seek(0)
        text = log.read()
        log.close()
        nets.update(re.findall(r"Using network (\S+)", text))
        ncclvers.update(re.findall(r"NCCL version (\d+\.\d+\.\d+)", text))
        versions.update("%s %s" % m for m in re.findall(r"Loaded net plugin (\S+) \((v\d+)\)", text))
        if rcs[r] != 0:
            tail = "\n    ".join(text.strip().splitlines()[-25:])
            problems.append("rank %d exited with %s; last lines of %s:\n    %s" % (r, rcs[r], log.name, tail))
    if nets != {expect_net}:
        problems.append("NCCL reported network(s) %s, expected %s" % (sorted(nets) or "none", expect_net))
    data = {"errors": [], "results": []}
    for r in (0, 1):
        if os.path.exists(out + ".rank%d" % r):
            with open(out + ".rank%d" % r) as f:
                d = json.load(f)
            data["errors"] += ["rank %d: %s" % (r, e) for e in d["errors"]]
            if r == 0:
                data["results"] = d["results"]
    problems += data["errors"]
    if not data["results"] and not problems:
        problems.append("rank 0 wrote no results")
    print("%-22s NCCL %s, network: %-10s %s  %s" % (label, ",".join(sorted(ncclvers)) or "?",
                                                     ",".join(sorted(nets)) or "?",
                                                     ("plugin " + ", ".join(sorted(versions))) if versions else "",
                                                     "OK" if not problems else "FAILED"), flush=True)
    for p in problems:
        print("  " + p)
    return problems, data["results"]


def human(n):
    for unit, s in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= s:
            return "%g %s" % (n / s, unit)
    return "%d B" % n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    ap.add_argument("--plugin", help="path to libnccl-net-tcpxsock.so (default: newest build*/plugins/nccl/)")
    ap.add_argument("--transports", default="tcpxsock,socket")
    ap.add_argument("--socks", default="1", help="TCPX_SOCKS_PER_COMM values for the tcpxsock runs")
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per configuration")
    ap.add_argument("--no-loopback", dest="loopback", action="store_false")
    ap.add_argument("--same-gpu", action="store_true",
                    help="both ranks on GPU 0 (one NCCL_HOSTID per rank): a check on a 1-GPU machine; "
                         "bandwidths then share one GPU")
    a = ap.parse_args()
    a.sizes = [int(s) for s in str(a.sizes).split(",") if s]
    if a.worker:
        return worker(a)

    try:
        import torch
    except ImportError:
        print("SKIP: PyTorch is not installed")
        return 77
    ngpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if ngpu < (1 if a.same_gpu else 2):
        print("SKIP: needs 2 GPUs (or 1 with --same-gpu), found %d" % ngpu)
        return 77
    plugin = find_plugin(a.plugin)
    configs = []
    for t in a.transports.split(","):
        if t == "tcpxsock":
            if not plugin or not os.path.exists(plugin):
                print("no libnccl-net-tcpxsock.so found (build it, or pass --plugin)")
                return 1
            for s in a.socks.split(","):
                configs.append(("TCPXSock socks=%s" % s, {"NCCL_NET_PLUGIN": plugin, "NCCL_NET": "TCPXSock",
                                                          "TCPX_SOCKS_PER_COMM": s}, "TCPXSock"))
        elif t == "socket":
            configs.append(("NCCL Socket", {"NCCL_NET_PLUGIN": "none", "NCCL_NET": "Socket"}, "Socket"))
        else:
            print("unknown transport %s (tcpxsock, socket)" % t)
            return 1
    print("torch %s (built with NCCL %s), %d GPUs (%s); plugin %s" % (
        torch.__version__, ".".join(map(str, torch.cuda.nccl.version())), ngpu,
        torch.cuda.get_device_name(0), plugin))
    logdir = tempfile.mkdtemp(prefix="nccl_plugin_check.")
    all_problems, table = [], {}
    for label, env, net in configs:
        problems, results = run_config(a, label, env, net, logdir)
        all_problems += ["%s: %s" % (label, p) for p in problems]
        table[label] = {(r["op"], r["bytes"]): r for r in results}
    labels = [c[0] for c in configs]
    print("\nbus bandwidth, GB/s (time per op in us); all_reduce busbw = algbw for 2 ranks")
    print("%-11s %-10s" % ("op", "size") + "".join("%26s" % l for l in labels))
    for op in ("all_reduce", "send_recv"):
        for size in a.sizes:
            row = "%-11s %-10s" % (op, human(size))
            for l in labels:
                r = table.get(l, {}).get((op, size))
                row += "%26s" % ("%.2f (%.0f us)" % (r["busbw"], r["us"]) if r else "-")
            print(row)
    print("\nlogs: %s" % logdir)
    if all_problems:
        print("FAILED: %d problem(s)" % len(all_problems))
        return 1
    print("PASSED: results checked element for element; NCCL used the expected network in every run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
