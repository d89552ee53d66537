/*
 * it_errors - the API's error contract, with a live peer where one is needed.
 *
 * Process A runs the checks; process B is a helper peer that obeys commands
 * sent over the bootstrap socket ("send TAG SIZE", "recv TAG SIZE", "end"):
 * it posts the operation, waits, verifies received bytes and answers with
 * the status name.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1024u * 1024u)

/* ------------------------------------------------------------- helper peer */

static int peer_b(void *arg)
{
    int fd = (int)(intptr_t)arg;
    tcpx_session *s = hx_session("B", 2, 64 * 1024);
    hx_region r;
    hx_region_init(s, &r, 4 * MiB, hx_mix(hx_seed, 0xB0));
    hx_accept_from(s, "A", fd);
    for (;;) {
        char *cmd = hx_recv(fd, NULL, 60000);
        char op[16];
        uint64_t tag = 0;
        size_t size = 0;
        if (!strcmp(cmd, "end")) {
            free(cmd);
            break;
        }
        HX_CHECK(sscanf(cmd, "%15s %" SCNu64 " %zu", op, &tag, &size) == 3, "bad command \"%s\"", cmd);
        free(cmd);
        uint64_t seed = hx_mix(hx_seed, tag);
        tcpx_xfer *x;
        HX_OK(tcpx_xfer_create(s, "A", &x));
        if (!strcmp(op, "send")) {
            hx_fill(r.ptr + 7, size, seed, 0);
            HX_OK(tcpx_xfer_post_send(x, r.id, 7, size, tag));
        } else {
            hx_fill(r.ptr, r.size, 0x5eed, 0);
            HX_OK(tcpx_xfer_post_recv(x, r.id, 7, size, tag));
        }
        tcpx_status st = tcpx_xfer_wait(x, HX_MS(20000));
        tcpx_xfer_release(x);
        if (st == TCPX_OK && !strcmp(op, "recv")) {
            char what[96];
            snprintf(what, sizeof what, "B received tag %" PRIu64, tag);
            HX_CHECK_PATTERN(what, r.ptr + 7, size, seed, 0);
        }
        hx_send_str(fd, tcpx_strerror(st));
    }
    hx_region_fini(s, &r);
    tcpx_session_destroy(s);
    return 0;
}

/* Tell B to post an operation; the caller then waits on its own transfer and
 * finally collects B's answer with expect_b(). */
static void cmd_b(int fd, const char *op, uint64_t tag, size_t size)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s %" PRIu64 " %zu", op, tag, size);
    hx_send_str(fd, buf);
}

static void expect_b(int fd, const char *want, const char *what)
{
    char *got = hx_recv(fd, NULL, 30000);
    HX_CHECK(!strcmp(got, want), "%s: peer B's operation ended with %s, expected %s", what, got, want);
    free(got);
}

/* ------------------------------------------------------------------ checks */

static void check_strerror(void)
{
    static const struct {
        tcpx_status st;
        const char *name;
    } names[] = {
        {TCPX_OK, "TCPX_OK"},
        {TCPX_IN_PROGRESS, "TCPX_IN_PROGRESS"},
        {TCPX_ERR_INVALID, "TCPX_ERR_INVALID"},
        {TCPX_ERR_NOMEM, "TCPX_ERR_NOMEM"},
        {TCPX_ERR_NOT_FOUND, "TCPX_ERR_NOT_FOUND"},
        {TCPX_ERR_TIMEOUT, "TCPX_ERR_TIMEOUT"},
        {TCPX_ERR_PEER, "TCPX_ERR_PEER"},
        {TCPX_ERR_PROTOCOL, "TCPX_ERR_PROTOCOL"},
        {TCPX_ERR_UNSUPPORTED, "TCPX_ERR_UNSUPPORTED"},
        {TCPX_ERR_CUDA, "TCPX_ERR_CUDA"},
        {TCPX_ERR_TRANSPORT, "TCPX_ERR_TRANSPORT"},
        {TCPX_ERR_AUTH, "TCPX_ERR_AUTH"},
        {TCPX_ERR_SYSTEM, "TCPX_ERR_SYSTEM"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *got = tcpx_strerror(names[i].st);
        HX_CHECK(got && !strcmp(got, names[i].name), "tcpx_strerror(%d) = \"%s\", expected \"%s\"",
                 (int)names[i].st, got ? got : "(null)", names[i].name);
    }
    HX_CHECK(tcpx_strerror((tcpx_status)-99) != NULL, "tcpx_strerror(-99) is NULL");
    HX_CHECK(tcpx_strerror((tcpx_status)42) != NULL, "tcpx_strerror(42) is NULL");
}

/* An int knob's variable: `bad` is refused, `good` lands in the field at off. */
static void check_env_int(const char *var, const char *bad, int good, size_t off)
{
    tcpx_config cfg;
    char text[16];
    setenv(var, bad, 1);
    tcpx_config_init(&cfg);
    HX_EXPECT(tcpx_config_apply_env(&cfg), TCPX_ERR_INVALID);
    snprintf(text, sizeof text, "%d", good);
    setenv(var, text, 1);
    HX_OK(tcpx_config_apply_env(&cfg));
    int got;
    memcpy(&got, (const char *)&cfg + off, sizeof got);
    HX_CHECK(got == good, "%s=%d gave %d", var, good, got);
    unsetenv(var);
}

static void check_config(void)
{
    tcpx_config cfg;
    tcpx_session *s = (tcpx_session *)0x1;
    tcpx_config_init(&cfg);
    cfg.channels = 0;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    HX_CHECK(s == NULL, "failed tcpx_session_create left *out non-NULL");
    tcpx_config_init(&cfg);
    cfg.channels = TCPX_MAX_CHANNELS + 1;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    tcpx_config_init(&cfg);
    HX_EXPECT(tcpx_session_create(&cfg, NULL), TCPX_ERR_INVALID);
    tcpx_config_init(&cfg);
    snprintf(cfg.transport, sizeof cfg.transport, "/nonexistent/libnccl-net-nothing.so");
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_TRANSPORT);
    tcpx_config_init(&cfg);
    snprintf(cfg.transport, sizeof cfg.transport, "socket");
    cfg.gpu_id = 0; /* this machine and build: no CUDA */
    tcpx_status st = tcpx_session_create(&cfg, &s);
    if (st == TCPX_OK) {
        hx_log("note: gpu_id 0 accepted (a CUDA build on a GPU machine); skipping the UNSUPPORTED check");
        tcpx_session_destroy(s);
    } else {
        HX_CHECK(st == TCPX_ERR_UNSUPPORTED || st == TCPX_ERR_CUDA,
                 "gpu_id 0 without a GPU: tcpx_session_create returned %s, expected TCPX_ERR_UNSUPPORTED: %s",
                 tcpx_strerror(st), tcpx_last_error());
    }
    /* net_device: the socket transport has one device */
    tcpx_config_init(&cfg);
    snprintf(cfg.transport, sizeof cfg.transport, "socket");
    cfg.net_device = 1;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    HX_CHECK(strstr(tcpx_last_error(), "has 1 device"), "net_device 1: error does not say why: %s", tcpx_last_error());
    cfg.net_device = -2;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    cfg.net_device = 0;
    HX_OK(tcpx_session_create(&cfg, &s));
    tcpx_session_destroy(s);
    check_env_int("TCPX_NET_DEVICE", "-5", 0, offsetof(tcpx_config, net_device));
    setenv("TCPX_CHANNELS", "four", 1);
    tcpx_config_init(&cfg);
    HX_EXPECT(tcpx_config_apply_env(&cfg), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_session_create(NULL, &s), TCPX_ERR_INVALID);
    setenv("TCPX_CHANNELS", "3", 1);
    tcpx_config_init(&cfg);
    HX_OK(tcpx_config_apply_env(&cfg));
    HX_CHECK(cfg.channels == 3, "TCPX_CHANNELS=3 gave channels %d", cfg.channels);
    unsetenv("TCPX_CHANNELS");
    /* The budget of unexpected sends: at least one send, and one inline send's bytes. */
    tcpx_config_init(&cfg);
    HX_CHECK(cfg.unexpected_max == 65536 && cfg.unexpected_max_bytes == 64u << 20, "unexpected budget defaults %d %zu",
             cfg.unexpected_max, cfg.unexpected_max_bytes);
    cfg.unexpected_max = 0;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    HX_CHECK(strstr(tcpx_last_error(), "unexpected_max"), "unexpected_max 0: error does not say why: %s",
             tcpx_last_error());
    tcpx_config_init(&cfg);
    cfg.unexpected_max_bytes = 8191;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    setenv("TCPX_UNEXPECTED_MAX", "0", 1);
    tcpx_config_init(&cfg);
    HX_EXPECT(tcpx_config_apply_env(&cfg), TCPX_ERR_INVALID);
    setenv("TCPX_UNEXPECTED_MAX", "16", 1);
    setenv("TCPX_UNEXPECTED_MAX_BYTES", "65536", 1);
    HX_OK(tcpx_config_apply_env(&cfg));
    HX_CHECK(cfg.unexpected_max == 16 && cfg.unexpected_max_bytes == 65536, "TCPX_UNEXPECTED_MAX(_BYTES) gave %d %zu",
             cfg.unexpected_max, cfg.unexpected_max_bytes);
    setenv("TCPX_UNEXPECTED_MAX_BYTES", "100", 1);
    HX_EXPECT(tcpx_config_apply_env(&cfg), TCPX_ERR_INVALID);
    unsetenv("TCPX_UNEXPECTED_MAX");
    unsetenv("TCPX_UNEXPECTED_MAX_BYTES");
    /* The knobs of the socket transport and of waiting: range checked by
     * the environment and by session creation alike. */
    check_env_int("TCPX_SPIN_US", "-1", 0, offsetof(tcpx_config, spin_us));
    check_env_int("TCPX_PROGRESS_SPIN_US", "-2", 50, offsetof(tcpx_config, progress_spin_us));
    setenv("TCPX_IO_THREADS", "65", 1);
    tcpx_config_init(&cfg);
    HX_EXPECT(tcpx_config_apply_env(&cfg), TCPX_ERR_INVALID);
    unsetenv("TCPX_IO_THREADS");
    tcpx_config_init(&cfg);
    cfg.spin_us = 2000000;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    tcpx_config_init(&cfg);
    cfg.io_threads = -1;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    tcpx_config_init(&cfg);
    cfg.progress_spin_us = 1000001;
    HX_EXPECT(tcpx_session_create(&cfg, &s), TCPX_ERR_INVALID);
    tcpx_session_destroy(NULL);
}

static void check_memory(tcpx_session *s)
{
    static uint8_t buf[8192];
    tcpx_mem_id id = 0;
    HX_EXPECT(tcpx_mem_register(s, NULL, 100, TCPX_MEM_HOST, &id), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_mem_register(s, buf, 0, TCPX_MEM_HOST, &id), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_mem_register(s, NULL, 0, TCPX_MEM_HOST, &id), TCPX_ERR_INVALID);
    HX_EXPECT(tcpx_mem_register(s, buf, sizeof buf, TCPX_MEM_CUDA, &id), TCPX_ERR_UNSUPPORTED);
    HX_EXPECT(tcpx_mem_deregister(s, 0), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_mem_deregister(s, 0x123456789ull), TCPX_ERR_NOT_FOUND);
    tcpx_mem_info_t info;
    HX_EXPECT(tcpx_mem_info(s, 0, &info), TCPX_ERR_NOT_FOUND);
    tcpx_memdesc d;
    HX_EXPECT(tcpx_memdesc_get(s, 0x77777, &d), TCPX_ERR_NOT_FOUND);

    HX_OK(tcpx_mem_register(s, buf, sizeof buf, TCPX_MEM_HOST, &id));
    HX_CHECK(id != 0, "mem id 0");
    HX_OK(tcpx_mem_info(s, id, &info));
    HX_CHECK(info.ptr == buf && info.size == sizeof buf && info.kind == TCPX_MEM_HOST && info.device == -1 &&
                 info.id == id,
             "tcpx_mem_info: ptr %p size %zu kind %d device %d id %" PRIu64 " do not describe the registration",
             info.ptr, info.size, (int)info.kind, info.device, info.id);
    HX_OK(tcpx_memdesc_get(s, id, &d));
    HX_CHECK(d.addr == (uint64_t)(uintptr_t)buf && d.size == sizeof buf && d.id == id && d.kind == TCPX_MEM_HOST,
             "memdesc does not describe the registration");
    uint8_t blob[TCPX_MEMDESC_BLOB_SIZE + 8];
    size_t len = 0;
    HX_EXPECT(tcpx_memdesc_serialize(&d, blob, TCPX_MEMDESC_BLOB_SIZE - 1, &len), TCPX_ERR_INVALID);
    HX_OK(tcpx_memdesc_serialize(&d, blob, sizeof blob, &len));
    HX_CHECK(len == TCPX_MEMDESC_BLOB_SIZE, "memdesc blob is %zu bytes", len);
    tcpx_memdesc d2;
    HX_OK(tcpx_memdesc_deserialize(blob, len, &d2));
    HX_CHECK(!memcmp(&d.addr, &d2.addr, 8) && d2.size == d.size && d2.id == d.id && d2.key == d.key &&
                 d2.kind == d.kind,
             "memdesc round trip changed it");
    HX_EXPECT(tcpx_memdesc_deserialize(blob, len - 1, &d2), TCPX_ERR_PROTOCOL);
    blob[20] ^= 0x40;
    HX_EXPECT(tcpx_memdesc_deserialize(blob, len, &d2), TCPX_ERR_PROTOCOL);
    /* The same range registered twice at once: two registrations. */
    tcpx_mem_id twin = 0, half = 0;
    HX_OK(tcpx_mem_register(s, buf, sizeof buf, TCPX_MEM_HOST, &twin));
    HX_CHECK(twin != id && twin != 0, "a second registration of the same range got id %" PRIu64, twin);
    HX_OK(tcpx_mem_register(s, buf, sizeof buf / 2, TCPX_MEM_HOST, &half));
    HX_CHECK(half != id && half != twin, "another range got the id of the first");
    HX_OK(tcpx_mem_deregister(s, twin));
    HX_OK(tcpx_mem_deregister(s, half));
    HX_OK(tcpx_mem_deregister(s, id));
    HX_EXPECT(tcpx_mem_deregister(s, id), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_mem_info(s, id, &info), TCPX_ERR_NOT_FOUND);
    /* Registered again after deregistering: the same descriptor (peers that
     * kept it, and NIXL's cached metadata, stay valid). */
    tcpx_mem_id again = 0;
    HX_OK(tcpx_mem_register(s, buf, sizeof buf, TCPX_MEM_HOST, &again));
    HX_OK(tcpx_memdesc_get(s, again, &d2));
    HX_CHECK(again == id && d2.key == d.key && d2.addr == d.addr && d2.size == d.size,
             "registering the same memory again gave another descriptor");
    HX_OK(tcpx_mem_deregister(s, again));
}

static void check_blobs(tcpx_session *s, const uint8_t *good, size_t len)
{
    uint8_t *b = malloc(len + 16);
    /* every single-byte corruption */
    for (size_t i = 0; i < len; i++) {
        memcpy(b, good, len);
        b[i] ^= (uint8_t)(1u << (i % 8));
        tcpx_status st = tcpx_session_load_remote(s, "corrupt", b, len);
        HX_CHECK(st == TCPX_ERR_PROTOCOL, "load_remote of a blob with byte %zu of %zu flipped returned %s", i, len,
                 tcpx_strerror(st));
        HX_CHECK(tcpx_last_error()[0], "no tcpx_last_error() after a corrupt blob");
    }
    memcpy(b, good, len);
    static const size_t cuts[] = {0, 1, 4, 9, 10, 64};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] >= len) continue;
        tcpx_status st = tcpx_session_load_remote(s, "corrupt", b, cuts[i]);
        HX_CHECK(st == TCPX_ERR_PROTOCOL || (cuts[i] == 0 && st == TCPX_ERR_INVALID),
                 "load_remote of a blob truncated to %zu bytes returned %s", cuts[i], tcpx_strerror(st));
    }
    HX_EXPECT(tcpx_session_load_remote(s, "corrupt", b, len - 1), TCPX_ERR_PROTOCOL);
    memset(b + len, 0xAB, 16);
    HX_EXPECT(tcpx_session_load_remote(s, "corrupt", b, len + 1), TCPX_ERR_PROTOCOL);
    HX_EXPECT(tcpx_session_load_remote(s, "corrupt", b, len + 16), TCPX_ERR_PROTOCOL);
    tcpx_status st = tcpx_session_load_remote(s, "corrupt", NULL, len);
    HX_CHECK(st == TCPX_ERR_INVALID || st == TCPX_ERR_PROTOCOL, "load_remote(NULL blob) returned %s",
             tcpx_strerror(st));
    /* nothing was stored under that name */
    HX_EXPECT(tcpx_session_connect(s, "corrupt"), TCPX_ERR_NOT_FOUND);
    free(b);
}

static void check_range(tcpx_xfer *x, tcpx_mem_id id, size_t rsize)
{
    size_t offs[] = {rsize, 0, rsize - 10, SIZE_MAX - 2, 1, SIZE_MAX, SIZE_MAX - 4095, rsize + 1};
    size_t lens[] = {1, rsize + 1, 11, 16, SIZE_MAX, 1, 8192, 0};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        tcpx_status st = tcpx_xfer_post_send(x, id, offs[i], lens[i], 1);
        HX_CHECK(st == TCPX_ERR_INVALID, "post_send(offset %zu, size %zu) on a %zu-byte region returned %s", offs[i],
                 lens[i], rsize, tcpx_strerror(st));
        HX_CHECK(tcpx_last_error()[0], "no tcpx_last_error() after an out-of-range post");
        st = tcpx_xfer_post_recv(x, id, offs[i], lens[i], 1);
        HX_CHECK(st == TCPX_ERR_INVALID, "post_recv(offset %zu, size %zu) on a %zu-byte region returned %s", offs[i],
                 lens[i], rsize, tcpx_strerror(st));
    }
}

static int tester_a(void *arg)
{
    int fd = (int)(intptr_t)arg;
    check_strerror();
    check_config();
    tcpx_session *s = hx_session("A", 2, 64 * 1024);
    const tcpx_config *cfg = tcpx_session_config(s);
    HX_CHECK(cfg->channels == 2 && cfg->chunk_bytes == 64 * 1024 && !strcmp(cfg->name, "A") &&
                 cfg->connect_timeout_ms == HX_MS(5000),
             "tcpx_session_config does not reflect the config given");
    HX_CHECK(!strcmp(tcpx_session_transport(s), "socket"), "transport \"%s\"", tcpx_session_transport(s));
    check_memory(s);

    tcpx_xfer *x = NULL;
    HX_EXPECT(tcpx_xfer_create(s, "nobody", &x), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_session_connect(s, "nobody"), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_session_disconnect(s, "nobody"), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_session_peer_status(s, "nobody"), TCPX_ERR_NOT_FOUND);

    /* listen is idempotent */
    const void *b1, *b2;
    size_t l1, l2;
    HX_OK(tcpx_session_listen(s, &b1, &l1));
    HX_OK(tcpx_session_listen(s, &b2, &l2));
    HX_CHECK(l1 == l2 && !memcmp(b1, b2, l1), "a second tcpx_session_listen returned a different blob");

    size_t blen;
    uint8_t *bblob = hx_recv_blob(fd, &blen);
    check_blobs(s, bblob, blen);
    HX_OK(tcpx_session_load_remote(s, "B", bblob, blen));
    free(bblob);
    HX_OK(tcpx_session_connect(s, "B"));
    HX_OK(tcpx_session_peer_status(s, "B"));
    hx_log("config, memory, blob and lookup errors ok; connected");

    /* accept of a name already connected */
    uint64_t t0 = hx_now_ms();
    HX_EXPECT(tcpx_session_accept(s, "B"), TCPX_ERR_INVALID);
    HX_CHECK(hx_now_ms() - t0 < (uint64_t)HX_MS(2000), "accept of a name in use took %" PRIu64 " ms", hx_now_ms() - t0);

    hx_region r, r2;
    hx_region_init(s, &r, 1 * MiB, hx_mix(hx_seed, 0xA0));
    hx_region_init(s, &r2, 64 * 1024, hx_mix(hx_seed, 0xA1));
    tcpx_mem_id gone = r2.id;
    hx_region_fini(s, &r2);

    /* unknown / deregistered mem ids, ranges */
    HX_OK(tcpx_xfer_create(s, "B", &x));
    HX_EXPECT(tcpx_xfer_post_send(x, 0, 0, 10, 1), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_xfer_post_recv(x, 0, 0, 10, 1), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_xfer_post_send(x, 0xdead0001ull, 0, 10, 1), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_xfer_post_recv(x, 0xdead0001ull, 0, 10, 1), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_xfer_post_send(x, gone, 0, 10, 1), TCPX_ERR_NOT_FOUND);
    HX_EXPECT(tcpx_xfer_post_recv(x, gone, 0, 10, 1), TCPX_ERR_NOT_FOUND);
    check_range(x, r.id, r.size);
    tcpx_xfer_release(x);
    hx_log("unknown mem ids and out-of-range posts ok");

    /* invalid batches post nothing: a later correct op of the same tag and
     * another size must be the one the peer matches */
    {
        tcpx_mem_id ids[3] = {r.id, r.id, r.id};
        size_t offs[3] = {0, 100, r.size}, sizes[3] = {1000, 1000, 1000};
        uint64_t tags[3] = {300, 301, 302};
        HX_OK(tcpx_xfer_create(s, "B", &x));
        HX_EXPECT(tcpx_xfer_post_send_batch(x, 3, ids, offs, sizes, tags), TCPX_ERR_INVALID);
        ids[2] = 0xdead0002ull;
        offs[2] = 0;
        HX_EXPECT(tcpx_xfer_post_send_batch(x, 3, ids, offs, sizes, tags), TCPX_ERR_NOT_FOUND);
        hx_fill(r.ptr + 5000, 2000, hx_mix(hx_seed, 300), 0);
        HX_OK(tcpx_xfer_post_send(x, r.id, 5000, 2000, 300));
        cmd_b(fd, "recv", 300, 2000);
        HX_WAIT_OK(x, 20000, "send after a rejected send batch");
        expect_b(fd, "TCPX_OK", "receive matching the send after a rejected send batch");
        tcpx_xfer_release(x);

        ids[2] = r.id;
        offs[2] = SIZE_MAX - 10;
        tags[0] = 310;
        HX_OK(tcpx_xfer_create(s, "B", &x));
        HX_EXPECT(tcpx_xfer_post_recv_batch(x, 3, ids, offs, sizes, tags), TCPX_ERR_INVALID);
        hx_fill(r.ptr, r.size, hx_mix(hx_seed, 0xA0), 0);
        HX_OK(tcpx_xfer_post_recv(x, r.id, 9000, 2000, 310));
        cmd_b(fd, "send", 310, 2000);
        HX_WAIT_OK(x, 20000, "receive after a rejected receive batch");
        expect_b(fd, "TCPX_OK", "send matching the receive after a rejected receive batch");
        tcpx_xfer_release(x);
        HX_CHECK_PATTERN("bytes of the receive after a rejected batch", r.ptr + 9000, 2000, hx_mix(hx_seed, 310), 0);
        HX_CHECK_PATTERN("guard before it", r.ptr, 9000, hx_mix(hx_seed, 0xA0), 0);
        HX_CHECK_PATTERN("guard after it", r.ptr + 11000, r.size - 11000, hx_mix(hx_seed, 0xA0), 11000);
    }
    hx_log("rejected batches post nothing: ok");

    /* deregister while an op uses the region */
    {
        hx_region r3;
        hx_region_init(s, &r3, 256 * 1024, hx_mix(hx_seed, 0xA3));
        HX_OK(tcpx_xfer_create(s, "B", &x));
        HX_OK(tcpx_xfer_post_recv(x, r3.id, 1000, 5000, 320));
        HX_EXPECT(tcpx_mem_deregister(s, r3.id), TCPX_ERR_INVALID);
        cmd_b(fd, "send", 320, 5000);
        HX_WAIT_OK(x, 20000, "receive into a region whose deregistration was refused");
        expect_b(fd, "TCPX_OK", "send to the busy region");
        tcpx_xfer_release(x);
        HX_CHECK_PATTERN("bytes received into the busy region", r3.ptr + 1000, 5000, hx_mix(hx_seed, 320), 0);

        HX_OK(tcpx_xfer_create(s, "B", &x));
        hx_fill(r3.ptr + 100, 100000, hx_mix(hx_seed, 321), 0);
        HX_OK(tcpx_xfer_post_send(x, r3.id, 100, 100000, 321));
        HX_EXPECT(tcpx_mem_deregister(s, r3.id), TCPX_ERR_INVALID);
        cmd_b(fd, "recv", 321, 100000);
        HX_WAIT_OK(x, 20000, "send from a region whose deregistration was refused");
        expect_b(fd, "TCPX_OK", "receive from the busy region");
        tcpx_xfer_release(x);
        hx_region_fini(s, &r3); /* deregisters: must work now */
    }
    hx_log("deregister of a busy region refused, works after release: ok");

    /* wait timeout on a receive nobody sends, then release */
    {
        HX_OK(tcpx_xfer_create(s, "B", &x));
        HX_OK(tcpx_xfer_post_recv(x, r.id, 0, 4096, 999));
        uint64_t ms;
        tcpx_status st = hx_wait_timed(x, 200, &ms);
        HX_CHECK(st == TCPX_ERR_TIMEOUT, "tcpx_xfer_wait(200) on an unmatched receive returned %s after %" PRIu64 " ms",
                 tcpx_strerror(st), ms);
        HX_CHECK(ms >= 150 && ms <= (uint64_t)HX_MS(2000), "tcpx_xfer_wait(200) returned TIMEOUT after %" PRIu64 " ms (want 150..2000)",
                 ms);
        HX_CHECK(tcpx_last_error()[0], "no tcpx_last_error() after a wait timeout");
        st = tcpx_xfer_test(x);
        HX_CHECK(st == TCPX_IN_PROGRESS, "tcpx_xfer_test after the timeout returned %s", tcpx_strerror(st));
        st = tcpx_xfer_wait(x, 0);
        HX_CHECK(st == TCPX_IN_PROGRESS, "tcpx_xfer_wait(0) returned %s", tcpx_strerror(st));
        t0 = hx_now_ms();
        tcpx_xfer_release(x);
        HX_CHECK(hx_now_ms() - t0 < (uint64_t)HX_MS(1000), "releasing an unmatched receive took %" PRIu64 " ms", hx_now_ms() - t0);
        /* the send side of a timeout: a send nobody receives */
        HX_OK(tcpx_xfer_create(s, "B", &x));
        HX_OK(tcpx_xfer_post_send(x, r.id, 0, 100000, 998));
        st = hx_wait_timed(x, 200, &ms);
        HX_CHECK(st == TCPX_ERR_TIMEOUT && ms >= 150 && ms <= (uint64_t)HX_MS(2000),
                 "wait(200) on an unreceived send: %s after %" PRIu64 " ms", tcpx_strerror(st), ms);
        t0 = hx_now_ms();
        tcpx_xfer_release(x);
        HX_CHECK(hx_now_ms() - t0 < (uint64_t)HX_MS(1000), "releasing an unreceived send took %" PRIu64 " ms", hx_now_ms() - t0);
    }
    hx_log("wait timeout and release ok");

    /* the connection still works */
    HX_OK(tcpx_session_peer_status(s, "B"));
    HX_OK(tcpx_xfer_create(s, "B", &x));
    hx_fill(r.ptr + 1, 300000, hx_mix(hx_seed, 400), 0);
    HX_OK(tcpx_xfer_post_send(x, r.id, 1, 300000, 400));
    cmd_b(fd, "recv", 400, 300000);
    HX_WAIT_OK(x, 20000, "final transfer");
    expect_b(fd, "TCPX_OK", "final transfer");
    tcpx_xfer_release(x);

    hx_send_str(fd, "end");
    hx_region_fini(s, &r);
    tcpx_session_destroy(s);
    return 0;
}

int main(void)
{
    hx_init("errors", 100);
    int fds[2];
    hx_pair(fds);
    pid_t pb = hx_spawn("B", 90, peer_b, (void *)(intptr_t)fds[1]);
    pid_t pa = hx_spawn("A", 90, tester_a, (void *)(intptr_t)fds[0]);
    pid_t both[2] = {pa, pb};
    hx_wait_all(both, 2, 95000);
    hx_log("PASS");
    return 0;
}
