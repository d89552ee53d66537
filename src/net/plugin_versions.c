/* plugin_versions.c - finding, loading and initializing an ncclNet plugin.
 *
 * dlopen(RTLD_NOW | RTLD_LOCAL), then the newest ncclNetPlugin_vN symbol
 * among the ABI versions we have shims for (plugin_v7.c, plugin_v9.c,
 * plugin_v11.c), checked for the functions every plugin must have. Each
 * (library, version) pair gets one process-wide entry that is never freed: a
 * library stays loaded once its init has been called, because plugins keep
 * threads and globals alive past their close calls (NCCL never unloads one
 * either). v7..v10 plugins are initialized once per process, as their
 * contract says; v11+ once per caller, each with its own context.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/plugin.h"
#include "util/error.h"
#include "util/log.h"
#include "util/random.h"

static const tcpx_plugin_shim *const shims[] = {
    &tcpx_plugin_shim_v12, &tcpx_plugin_shim_v11, &tcpx_plugin_shim_v10,
    &tcpx_plugin_shim_v9, &tcpx_plugin_shim_v8, &tcpx_plugin_shim_v7,
};
#define NSHIMS ((int)(sizeof shims / sizeof shims[0]))

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static tcpx_plugin_lib *g_libs;
/* Plugins log through one C function without context: it names the plugin
 * loaded last (in practice there is one). */
static const char *_Atomic g_log_name = "ncclNet";

const char *tcpx_plugin_result_name(int rc)
{
    static const char *names[] = {"ncclSuccess",        "ncclUnhandledCudaError", "ncclSystemError",
                                  "ncclInternalError",  "ncclInvalidArgument",    "ncclInvalidUsage",
                                  "ncclRemoteError"};
    return rc >= 0 && rc < 7 ? names[rc] : "unknown ncclResult_t";
}

/* ncclDebugLogger_t handed to the plugin: forwards to tcpx_log. */
static void pl_logger(int level, unsigned long flags, const char *file, int line, const char *fmt, ...)
{
    static const int map[] = {TCPX_LOG_NONE, TCPX_LOG_INFO, TCPX_LOG_WARN, TCPX_LOG_INFO, TCPX_LOG_ERROR,
                              TCPX_LOG_DEBUG};
    int l = level >= 0 && level <= TCPX_NCCL_LOG_TRACE ? map[level] : TCPX_LOG_DEBUG;
    if (l == TCPX_LOG_NONE || l > tcpx_log_get_level() || !fmt) return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r')) msg[--len] = '\0';
    const char *name = atomic_load(&g_log_name);
    if (level == TCPX_NCCL_LOG_TRACE && file)
        tcpx_log(l, "plugin %s: %s (%s:%d)", name, msg, file, line);
    else
        tcpx_log(l, "plugin %s: %s", name, msg);
}

/* dlopen path_or_name; on failure sets the error and returns NULL. */
static void *open_lib(const char *path_or_name, char *file, size_t cap)
{
    size_t len = strlen(path_or_name);
    int is_file = strchr(path_or_name, '/') || (len > 3 && !strcmp(path_or_name + len - 3, ".so")) ||
                  strstr(path_or_name, ".so.");
    int w = is_file ? snprintf(file, cap, "%s", path_or_name) : snprintf(file, cap, "libnccl-net-%s.so", path_or_name);
    if (w < 0 || (size_t)w >= cap) {
        tcpx_set_error(TCPX_ERR_TRANSPORT, "ncclNet plugin path or name is longer than %zu bytes", cap - 1);
        return NULL;
    }
    dlerror();
    void *dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        tcpx_set_error(TCPX_ERR_TRANSPORT, "cannot load ncclNet plugin \"%s\" (%s): %s", path_or_name, file,
                       why ? why : "unknown dlopen error");
    }
    return dl;
}

/* The newest supported table (or exactly `version`), else an error. */
static const tcpx_plugin_shim *find_table(void *dl, const char *file, int version, const void **table)
{
    char looked[256] = "";
    size_t off = 0;
    for (int i = 0; i < NSHIMS; i++) {
        if (version && shims[i]->version != version) continue;
        const void *t = dlsym(dl, shims[i]->symbol);
        if (t) {
            *table = t;
            return shims[i];
        }
        off += (size_t)snprintf(looked + off, sizeof looked - off, "%s%s", off ? ", " : "", shims[i]->symbol);
        if (off >= sizeof looked) off = sizeof looked - 1;
    }
    char older[128] = "";
    size_t o = 0;
    for (int v = TCPX_PLUGIN_MAX_VERSION + 8; v >= 2 && !version; v--) {
        if (v >= TCPX_PLUGIN_MIN_VERSION && v <= TCPX_PLUGIN_MAX_VERSION) continue;
        char sym[32];
        snprintf(sym, sizeof sym, "ncclNetPlugin_v%d", v);
        if (dlsym(dl, sym) && o < sizeof older - 24) o += (size_t)snprintf(older + o, sizeof older - o, " %s", sym);
    }
    if (o)
        tcpx_set_error(TCPX_ERR_TRANSPORT,
                       "%s exports no ncclNet table this build supports: it has%s, we need one of %s", file, older,
                       looked);
    else
        tcpx_set_error(TCPX_ERR_TRANSPORT, "%s is not an ncclNet plugin this build supports: none of %s is exported",
                       file, looked);
    return NULL;
}

int tcpx_plugin_lib_open(const char *path_or_name, int version, tcpx_plugin_lib **out)
{
    *out = NULL;
    char file[256];
    void *dl = open_lib(path_or_name, file, sizeof file);
    if (!dl) return TCPX_ERR_TRANSPORT;
    const void *table = NULL;
    const tcpx_plugin_shim *shim = find_table(dl, file, version, &table);
    const char *missing = shim ? shim->missing(table) : NULL;
    if (!shim || missing) {
        if (missing)
            tcpx_set_error(TCPX_ERR_TRANSPORT, "%s: its %s table has no %s function", file, shim->symbol, missing);
        dlclose(dl);
        return TCPX_ERR_TRANSPORT;
    }
    pthread_mutex_lock(&g_mu);
    tcpx_plugin_lib *lib = g_libs;
    while (lib && !(lib->dl == dl && lib->shim == shim)) lib = lib->next;
    if (lib) {
        dlclose(dl); /* the entry holds the library's first reference */
    } else if ((lib = calloc(1, sizeof *lib))) {
        const char *nm = shim->name(table);
        lib->dl = dl;
        lib->shim = shim;
        lib->table = table;
        snprintf(lib->name, sizeof lib->name, "%s", nm && *nm ? nm : "unnamed");
        snprintf(lib->file, sizeof lib->file, "%s", file);
        lib->next = g_libs;
        g_libs = lib;
    }
    pthread_mutex_unlock(&g_mu);
    if (!lib) {
        dlclose(dl);
        return tcpx_set_error(TCPX_ERR_NOMEM, "plugin bookkeeping allocation failed");
    }
    *out = lib;
    return TCPX_OK;
}

int tcpx_plugin_lib_init(tcpx_plugin_lib *lib, void **ctx)
{
    const tcpx_plugin_shim *shim = lib->shim;
    int rc = 0;
    *ctx = NULL;
    pthread_mutex_lock(&g_mu);
    atomic_store(&g_log_name, lib->name);
    if (!shim->finalize) { /* v7..v10: init once per process */
        if (lib->init_state == 0) {
            lib->init_rc = shim->init(lib->table, ctx, 0, pl_logger);
            lib->init_state = lib->init_rc ? -1 : 1;
        }
        rc = lib->init_rc;
    }
    pthread_mutex_unlock(&g_mu);
    if (shim->finalize) rc = shim->init(lib->table, ctx, tcpx_random_u64(), pl_logger);
    if (rc)
        return tcpx_set_error(TCPX_ERR_TRANSPORT, "plugin %s (%s, %s) init returned %d (%s)", lib->name, lib->file,
                              shim->symbol, rc, tcpx_plugin_result_name(rc));
    return TCPX_OK;
}
