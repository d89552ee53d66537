/* bench_main.c - tcpx-bench: processes, sessions and the report.
 *
 * The parent is the sender and prints the report; the child is the
 * receiver. They share the parsed options (fork) and talk over a socketpair:
 * the receiver's connection-info blob, the sender's name, and the
 * per-size script of bench_xfer.c. The child dies with the parent
 * (PR_SET_PDEATHSIG); every wait is bounded, so nothing hangs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "gpu/gpu.h"

static int uses_gpu(const bench_opts *o)
{
    for (int i = 0; i < o->nmems; i++)
        if (bench_mem_find(o->mems[i])->kind == TCPX_MEM_CUDA) return 1;
    return 0;
}

/* The receiver's device when not given: the second GPU if there is one.
 * Decided after fork: CUDA must not be initialised before it. */
static int pick_recv_gpu(const bench_opts *o)
{
    if (o->recv_gpu >= 0) return o->recv_gpu;
    int n = 0;
    if (tcpx_gpu_device_count(&n)) bench_die("--mem cuda: %s", tcpx_last_error());
    return n >= 2 ? 1 : 0;
}

static void make_config(const bench_opts *o, int gpu, const char *name, tcpx_config *cfg)
{
    tcpx_config_init(cfg);
    cfg->gpu_id = gpu;
    cfg->channels = o->channels;
    if (o->chunk) cfg->chunk_bytes = o->chunk;
    snprintf(cfg->transport, sizeof cfg->transport, "socket");
    snprintf(cfg->bind_addr, sizeof cfg->bind_addr, "127.0.0.1");
    snprintf(cfg->name, sizeof cfg->name, "%s", name);
}

static tcpx_session *open_session(const bench_opts *o, int gpu, const char *name)
{
    tcpx_config cfg;
    make_config(o, gpu, name, &cfg);
    tcpx_session *s = NULL;
    bench_check(tcpx_session_create(&cfg, &s), "tcpx_session_create");
    return s;
}

static int receiver_main(const bench_opts *o, int boot, int streams)
{
    if (o->ceiling) {
        bench_ceiling_recv(boot, streams, bench_ceiling_working_set(o));
        bench_ceiling_recv(boot, streams, BENCH_CEILING_HOT);
    }

    int gpu = uses_gpu(o) ? pick_recv_gpu(o) : -1;
    boot_send_u64(boot, (uint64_t)(int64_t)gpu);
    tcpx_session *s = open_session(o, gpu, "bench-recv");
    const void *blob;
    size_t len;
    bench_check(tcpx_session_listen(s, &blob, &len), "tcpx_session_listen");
    boot_send(boot, blob, (uint32_t)len);
    char peer[TCPX_NAME_MAX + 1] = {0};
    boot_recv(boot, peer, TCPX_NAME_MAX);
    bench_check(tcpx_session_accept(s, peer), "tcpx_session_accept");
    boot_send_u64(boot, 1); /* accepted */

    for (int k = 0; k < o->nmems; k++) {
        bench_ctx c = {o, bench_mem_find(o->mems[k]), gpu, s, peer, boot};
        for (int i = 0; i < o->nsizes; i++) {
            if (o->op == BENCH_OP_SEND) bench_size_recv(&c, o->sizes[i]);
            else bench_os_recv(&c, o->sizes[i]);
        }
    }
    boot_recv_u64(boot); /* sender done: keep the connection up until then */
    tcpx_session_destroy(s);
    return 0;
}

static void print_header(const bench_opts *o, tcpx_session *s, FILE *f)
{
    const tcpx_config *cfg = tcpx_session_config(s);
    char host[256] = "?", date[64] = "?", chunk[32];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", &tm);
    fprintf(f, "%stcpx-bench %d.%d.%d  host %s  date %s\n", o->csv ? "# " : "", TCPX_VERSION_MAJOR,
            TCPX_VERSION_MINOR, TCPX_VERSION_PATCH, host, date);
    fprintf(f,
            "%stransport %s  channels %d  chunk %s  window %d  socks/comm %d  staging %d  inflight %d  "
            "iters %s  seed %llu\n",
            o->csv ? "# " : "", tcpx_session_transport(s), cfg->channels,
            bench_fmt_size(cfg->chunk_bytes, chunk, sizeof chunk), cfg->window, cfg->socks_per_comm,
            cfg->staging_slots, o->inflight, o->iters ? "fixed" : "auto", (unsigned long long)o->seed);
}

static void print_row(const bench_opts *o, const bench_result *r, double ceiling, FILE *f)
{
    char sz[32], pct[32] = "-";
    bench_fmt_size(r->size, sz, sizeof sz);
    if (o->blocks > 1) { /* a list: "1024x4K" */
        char one[32];
        snprintf(one, sizeof one, "%s", sz);
        snprintf(sz, sizeof sz, "%dx%.20s", o->blocks, one);
    }
    if (ceiling > 0) snprintf(pct, sizeof pct, r->gbps / ceiling >= 0.001 ? "%.1f%%" : "%.2g%%", r->gbps / ceiling * 100);
    if (o->csv) {
        char cpct[32] = "";
        if (ceiling > 0) snprintf(cpct, sizeof cpct, "%.2f", r->gbps / ceiling * 100);
        fprintf(f, "%zu,%d,%ld,%.6f,%.6f,%.3f,%s,%.1f,%.1f,%llu,%.3f,%.3f\n", r->size, r->slots, r->msgs, r->seconds,
                r->gbps, r->us_per_msg, cpct, r->cpu_send, r->cpu_recv, (unsigned long long)r->errors, r->p50_us,
                r->p99_us);
    } else {
        char inflight[16] = "";
        if (r->slots != o->inflight) snprintf(inflight, sizeof inflight, " (K=%d)", r->slots);
        char gbps[32];
        snprintf(gbps, sizeof gbps, r->gbps >= 0.001 ? "%.3f" : "%.1e", r->gbps);
        char lat[48] = "";
        if (o->inflight == 1) snprintf(lat, sizeof lat, " %7.1f | %7.1f |", r->p50_us, r->p99_us);
        fprintf(f, "| %9s | %7s | %10.1f | %9s | %7.0f%% | %7.0f%% |%s%s%s\n", sz, gbps, r->us_per_msg, pct,
                r->cpu_send, r->cpu_recv, lat, inflight, r->errors ? "  MISMATCH" : "");
    }
    fflush(f);
}

static const char *op_name(int op) { return op == BENCH_OP_WRITE ? "write" : op == BENCH_OP_READ ? "read" : "send"; }

static void print_table_header(const bench_opts *o, const bench_mem_ops *mem, int send_gpu, int recv_gpu, FILE *f)
{
    char where[96] = "", what[160];
    if (mem->kind == TCPX_MEM_CUDA) snprintf(where, sizeof where, " (GPU %d -> GPU %d)", send_gpu, recv_gpu);
    if (o->op == BENCH_OP_SEND) snprintf(what, sizeof what, "op send");
    else snprintf(what, sizeof what, "op %s, lists of %d block%s of each size at scattered offsets%s", op_name(o->op),
                  o->blocks, o->blocks == 1 ? "" : "s",
                  o->op == BENCH_OP_READ ? " (bytes move target -> initiator; CPU send = initiator)" : "");
    if (o->csv) {
        fprintf(f, "# mem %s%s, %s\n", mem->name, where, what);
        fprintf(f, "mem,size,inflight,msgs,seconds,gbps,us_per_msg,pct_ceiling,cpu_send_pct,cpu_recv_pct,errors,"
                   "p50_us,p99_us\n");
        return;
    }
    fprintf(f, "\nmem %s%s, %s\n", mem->name, where, what);
    int lat = o->inflight == 1; /* one message at a time: each one's round trip, p50 and p99 */
    fprintf(f, "| %9s | %7s | %11s | %9s | %8s | %8s |%s\n", "size", "GB/s", "µs/msg" /* 2-byte µ */, "% ceiling",
            "CPU send", "CPU recv", lat ? " p50 µs  | p99 µs  |" : "");
    fprintf(f, "|----------:|--------:|-----------:|----------:|---------:|---------:|%s\n",
            lat ? "--------:|--------:|" : "");
}

static int sender_main(const bench_opts *o, int boot, int streams)
{
    double ceiling = 0, hot = 0;
    if (o->ceiling) {
        ceiling = bench_ceiling_send(boot, streams, o->ceiling_seconds, bench_ceiling_working_set(o));
        hot = bench_ceiling_send(boot, streams, o->ceiling_seconds, BENCH_CEILING_HOT);
    }
    int over = 0; /* rows above the ceiling */

    int recv_gpu = (int)(int64_t)boot_recv_u64(boot);
    int gpu = uses_gpu(o) ? o->send_gpu : -1;
    tcpx_session *s = open_session(o, gpu, "bench-send");
    const void *myblob;
    size_t mylen;
    bench_check(tcpx_session_listen(s, &myblob, &mylen), "tcpx_session_listen");
    static uint8_t blob[65536];
    uint32_t len = boot_recv(boot, blob, sizeof blob);
    const char *myname = tcpx_session_config(s)->name;
    boot_send(boot, myname, (uint32_t)strlen(myname));
    bench_check(tcpx_session_load_remote(s, "recv", blob, len), "tcpx_session_load_remote");
    bench_check(tcpx_session_connect(s, "recv"), "tcpx_session_connect");
    boot_recv_u64(boot);

    FILE *f = stdout;
    bench_json *json = o->json ? bench_json_open(o->json) : NULL;
    print_header(o, s, f);
    uint64_t errors = 0;
    long stamped = 0, verified = 0, crcd = 0;
    for (int k = 0; k < o->nmems; k++) {
        bench_ctx c = {o, bench_mem_find(o->mems[k]), gpu, s, "recv", boot};
        print_table_header(o, c.mem, gpu, recv_gpu, f);
        fflush(f);
        for (int i = 0; i < o->nsizes; i++) {
            bench_result r;
            if (o->op == BENCH_OP_SEND) bench_size_send(&c, o->sizes[i], &r);
            else bench_os_send(&c, o->sizes[i], &r);
            if (o->csv) fprintf(f, "%s,", c.mem->name);
            print_row(o, &r, ceiling, f);
            over += ceiling > 0 && r.gbps > ceiling;
            if (json) bench_json_row(json, c.mem->name, op_name(o->op), o->blocks, &r, ceiling);
            errors += r.errors;
            stamped += r.stamped_msgs;
            crcd += r.crc_msgs;
            verified += r.verified_msgs;
        }
    }
    boot_send_u64(boot, 1);
    tcpx_session_destroy(s);
    if (json) bench_json_close(json, o->seed, streams, ceiling, hot, streams, bench_ceiling_working_set(o));

    const char *p = o->csv ? "# " : ""; /* prefix of the summary lines */
    if (!o->csv) {
        fprintf(f, "\n");
        if (o->inflight > 1)
            fprintf(f, "µs/msg = wall time / messages with %d in flight (inverse throughput); "
                       "--inflight 1 gives latency\n", o->inflight);
        else
            fprintf(f, "p50/p99: post to completion of each timed message (send: the round trip to the "
                       "receiver's acknowledgement)\n");
    }
    if (o->ceiling)
    {
        char ws[32];
        fprintf(f, "%sraw TCP ceiling (%d stream%s, one thread each, %s working set as the table's buffers, "
                   "transfer only): %.3f GB/s; cache-hot (1M per stream): %.3f GB/s\n",
                p, streams, streams == 1 ? "" : "s", bench_fmt_size(bench_ceiling_working_set(o), ws, sizeof ws),
                ceiling, hot);
        if (over)
            fprintf(f, "%snote: %d row(s) above the ceiling: the library keeps several messages and chunks in "
                       "flight per stream and moves them from a pool of I/O threads plus the callers, where the "
                       "ceiling has one blocking thread per stream; on loopback both sides' copies share the "
                       "same cores, so the ceiling is a reference, not a bound\n",
                    p, over);
    }
    else fprintf(f, "%sraw TCP ceiling: not measured (--no-ceiling)\n", p);
    fprintf(f, "%sverify: every message's first/last 8 bytes stamp-checked (%ld messages), %ld of them also in "
               "all their bytes%s, %ld messages checked byte for byte: %s\n",
            p, stamped, crcd,
            o->crc ? " (host memory: CRC-32C; GPU memory, send: a compare kernel)" : " (--no-crc)", verified,
            errors ? "FAILED" : "OK");
    if (errors) fprintf(f, "%s%llu mismatching bytes/stamps (details on stderr)\n", p, (unsigned long long)errors);
    if (uses_gpu(o) && gpu == recv_gpu)
        fprintf(f, "%snote: both processes use GPU %d: without an MPS server (nvidia-cuda-mps-control -d) the GPU "
                   "switches between their two contexts, and every small GPU copy can wait for the other "
                   "process's time slice (one H200: 4 KiB GPU messages 330 us each without MPS, 49 us with); "
                   "with a GPU per process, or MPS, there is no such wait\n",
                p, gpu);
    fflush(f);
    return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    bench_opts o;
    int rc = bench_parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 2 : 0;
    if (!o.seed_given) o.seed = bench_mix((uint64_t)time(NULL), (uint64_t)getpid());
    /* The stream count of the ceiling is the session's channel count after
     * the TCPX_* environment, so both measure the same thing. */
    tcpx_config cfg;
    make_config(&o, -1, "bench", &cfg);
    tcpx_status st = tcpx_config_apply_env(&cfg);
    if (st) bench_die("TCPX_* environment: %s", tcpx_last_error());
    int streams = cfg.channels;

    signal(SIGPIPE, SIG_IGN);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) bench_die("socketpair failed");
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) bench_die("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        close(sv[0]);
        bench_role = "recv";
        rc = receiver_main(&o, sv[1], streams);
        fflush(NULL);
        _exit(rc);
    }
    close(sv[1]);
    bench_role = "send";
    rc = sender_main(&o, sv[0], streams);
    close(sv[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "tcpx-bench: receiver process %s %d\n",
                WIFSIGNALED(status) ? "killed by signal" : "exited with status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        rc = 1;
    }
    return rc;
}
