/* replay.c - run a fuzz harness without libFuzzer.
 *
 * Linked with one harness (fuzz_<target>.c), which provides
 * LLVMFuzzerTestOneInput, fuzz_make_valid (a random valid encoding),
 * fuzz_fixup (repairs the checksum, length field or length of a mutated
 * input) and
 * fuzz_target_name. The harness aborts when an invariant breaks.
 *
 *   fuzz_replay_<target> [-n N] [-s SEED] [-d DIR] [-w DIR] [FILE...]
 *
 * With files: runs the harness once on each (reproduces a libFuzzer crash
 * with any compiler). -d DIR first runs it once on every file in DIR (the
 * committed regression corpus, tests/fuzz/corpus/<target>/; a DIR that
 * cannot be read is an error): a file named valid-* must be accepted, one
 * named bad-* rejected, any other (a regression input) must only keep the
 * invariants; then it goes on. Otherwise: N inputs (default 20000, seed 1, both also
 * from FUZZ_REPLAY_N / FUZZ_REPLAY_SEED) derived from valid encodings by
 * stacked mutations: bit flips, random and boundary bytes and words,
 * truncation, extension, insertion, deletion, duplication, splicing two
 * inputs, and half of the time a repaired checksum/length so that the field
 * checks are reached. Every input is handed over in a heap buffer of exactly
 * its length, so an ASan build catches any overread. -w DIR writes 64 valid
 * encodings to DIR as a libFuzzer seed corpus and exits. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_make_valid(uint64_t seed, uint8_t *buf, size_t cap);
size_t fuzz_fixup(uint8_t *buf, size_t len, size_t cap, unsigned how);
extern const char fuzz_target_name[];
extern const size_t fuzz_max_input;
extern int fuzz_last_accepted;
extern const unsigned char fuzz_fields[][2];
extern const size_t fuzz_nfields;

#define CAP (64 * 1024)

static uint64_t g_s;

static uint64_t rnd(void)
{
    uint64_t z = (g_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static void run_one(const uint8_t *data, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    if (!c) abort();
    if (len) memcpy(c, data, len);
    LLVMFuzzerTestOneInput(c, len);
    free(c);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* One mutation of buf[0..*len) (capacity CAP). */
static void mutate(uint8_t *buf, size_t *len, const uint8_t *other, size_t other_len)
{
    static const uint64_t interesting[] = {0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 63, 64, 65,
                                           127, 128, 129, 0x7FFFFFFF, 0x80000000u, 0xFFFFFFFFu, UINT64_MAX};
    size_t n = *len;
    switch (below(13)) {
    case 0: /* bit flip */
        if (n) {
            size_t at = below(n);
            buf[at] ^= (uint8_t)(1u << below(8));
        }
        break;
    case 1: /* random byte */
        if (n) {
            size_t at = below(n);
            buf[at] = (uint8_t)rnd();
        }
        break;
    case 2:
    case 3: { /* a known field: boundary value, current value +-1..3, or random */
        size_t f = below(fuzz_nfields);
        size_t off = fuzz_fields[f][0];
        int w = fuzz_fields[f][1];
        if (off + (size_t)w > n) break;
        uint64_t cur = 0, v;
        for (int i = 0; i < w; i++) cur |= (uint64_t)buf[off + i] << (8 * i);
        switch (below(3)) {
        case 0: v = interesting[below(sizeof interesting / sizeof interesting[0])]; break;
        case 1: {
            uint64_t d = 1 + below(3);
            v = below(2) ? cur + d : cur - d;
            break;
        }
        default: v = rnd(); break;
        }
        put_le(buf + off, v, w);
        break;
    }
    case 4: /* truncate */
        *len = below(n + 1);
        break;
    case 5: { /* extend with random bytes */
        size_t add = 1 + below(below(4) ? 8 : 512);
        if (n + add > CAP) break;
        for (size_t i = 0; i < add; i++) buf[n + i] = (uint8_t)rnd();
        *len = n + add;
        break;
    }
    case 6: { /* insert bytes in the middle */
        size_t add = 1 + below(16), at = below(n + 1);
        if (n + add > CAP) break;
        memmove(buf + at + add, buf + at, n - at);
        for (size_t i = 0; i < add; i++) buf[at + i] = (uint8_t)rnd();
        *len = n + add;
        break;
    }
    case 7: { /* delete bytes */
        if (!n) break;
        size_t at = below(n), del = 1 + below(n - at < 16 ? n - at : 16);
        memmove(buf + at, buf + at + del, n - at - del);
        *len = n - del;
        break;
    }
    case 8: { /* duplicate a chunk at another place */
        if (n < 2) break;
        size_t from = below(n), cnt = 1 + below(n - from), to = below(n);
        if (to + cnt > n) cnt = n - to;
        memmove(buf + to, buf + from, cnt);
        break;
    }
    case 9: { /* splice: our head, the other input's tail */
        size_t cut = below(n + 1), ocut = below(other_len + 1);
        size_t tail = other_len - ocut;
        if (cut + tail > CAP) break;
        memcpy(buf + cut, other + ocut, tail);
        *len = cut + tail;
        break;
    }
    case 10: /* zero or 0xFF a run */
        if (n) {
            size_t at = below(n), cnt = 1 + below(n - at);
            memset(buf + at, below(2) ? 0 : 0xFF, cnt);
        }
        break;
    case 11: { /* boundary value or the length (+-1) as u8/u16/u32/u64 anywhere */
        int w = 1 << below(4);
        if (n < (size_t)w) break;
        uint64_t v = below(4) ? interesting[below(sizeof interesting / sizeof interesting[0])] : n + below(3) - 1;
        put_le(buf + below(n - w + 1), v, w);
        break;
    }
    default: /* several random bytes */
        for (size_t k = 0, m = 1 + below(8); k < m && n; k++) {
            size_t at = below(n);
            buf[at] = (uint8_t)rnd();
        }
        break;
    }
}

static int write_corpus(const char *dir)
{
    static uint8_t buf[CAP];
    for (int i = 0; i < 64; i++) {
        size_t len = fuzz_make_valid(rnd(), buf, fuzz_max_input < CAP ? fuzz_max_input : CAP);
        if (!len) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/seed-%s-%02d", dir, fuzz_target_name, i);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, len, f) != len) {
            fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
            if (f) fclose(f);
            return 1;
        }
        fclose(f);
    }
    return 0;
}

static int replay_file(const char *path)
{
    static uint8_t buf[1 << 24];
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    printf("fuzz_replay_%s: %s (%zu bytes)\n", fuzz_target_name, path, len);
    run_one(buf, len);
    return 0;
}

static int replay_files(int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++)
        if (replay_file(argv[i])) return 2;
    return 0;
}

/* Every regular file in dir (dot files skipped), once each. */
static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open corpus directory %s: %s\n", dir, strerror(errno));
        return 2;
    }
    int n = 0, rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rc = replay_file(path);
        n++;
        int want = !strncmp(e->d_name, "valid-", 6) ? 1 : !strncmp(e->d_name, "bad-", 4) ? 0 : -1;
        if (!rc && want >= 0 && fuzz_last_accepted != want) {
            fprintf(stderr, "fuzz_replay_%s: %s was %s\n", fuzz_target_name, path,
                    want ? "rejected (a valid-* file must decode)" : "accepted (a bad-* file must be rejected)");
            rc = 1;
        }
    }
    closedir(d);
    if (!rc) printf("fuzz_replay_%s: %d corpus files of %s: OK\n", fuzz_target_name, n, dir);
    return rc;
}

int main(int argc, char **argv)
{
    long n = getenv("FUZZ_REPLAY_N") ? atol(getenv("FUZZ_REPLAY_N")) : 20000;
    uint64_t seed = getenv("FUZZ_REPLAY_SEED") ? strtoull(getenv("FUZZ_REPLAY_SEED"), NULL, 0) : 1;
    const char *corpus = NULL, *regress = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atol(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "-w") && i + 1 < argc) corpus = argv[++i];
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) regress = argv[++i];
        else {
            fprintf(stderr, "usage: %s [-n N] [-s SEED] [-d REPLAY_DIR] [-w CORPUS_DIR] [FILE...]\n", argv[0]);
            return 2;
        }
    }
    g_s = seed;
    if (corpus) return write_corpus(corpus);
    if (regress && replay_dir(regress)) return 2;
    if (i < argc) return replay_files(argc, argv, i);

    static uint8_t cur[CAP], other[CAP];
    size_t maxin = fuzz_max_input < CAP ? fuzz_max_input : CAP;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long valid = 0, accepted = 0;
    for (long k = 0; k < n; k++) {
        size_t len, olen = fuzz_make_valid(rnd(), other, maxin);
        if (below(16) == 0) { /* pure garbage now and then */
            len = below(below(2) ? 64 : maxin + 1);
            for (size_t b = 0; b < len; b++) cur[b] = (uint8_t)rnd();
        } else {
            len = fuzz_make_valid(rnd(), cur, maxin);
            if (k % 8 == 0) { /* the valid input itself must pass */
                run_one(cur, len);
                if (!fuzz_last_accepted) {
                    fprintf(stderr, "fuzz_replay_%s: a valid encoding (%zu bytes, input %ld) was rejected\n",
                            fuzz_target_name, len, k);
                    return 1;
                }
                valid++;
            }
            for (size_t m = 0, cnt = 1 + below(below(4) ? 2 : 8); m < cnt; m++) mutate(cur, &len, other, olen);
        }
        if (below(2)) len = fuzz_fixup(cur, len, maxin, (unsigned)rnd());
        run_one(cur, len);
        accepted += fuzz_last_accepted;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("fuzz_replay_%s: %ld mutated inputs (%ld accepted) + %ld valid, seed %" PRIu64 ", %.2f s: OK\n",
           fuzz_target_name, n, accepted, valid, seed, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
