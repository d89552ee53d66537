/* lock.c - the session lock, and the rule that the session's GPU is current
 * while it is held. */
#include "core/core.h"
#include "gpu/gpu.h"
#include "util/error.h"
#include "util/log.h"

/* Plugins such as GPUDirect-TCPX work on the calling thread's current CUDA
 * device (registration, bounce buffers), as NCCL's proxy thread sets it.
 * Every entry into the session makes the session's GPU current and puts
 * the caller's device back on the way out. */
static __thread int tl_prev_device = -1;

void sess_lock(tcpx_session *s)
{
    pthread_mutex_lock(&s->mu);
    tl_prev_device = -1;
    if (s->plugin_on_gpu && tcpx_gpu_enter(s->gpu, &tl_prev_device)) {
        TCPX_WARN("session %s: cannot make GPU %d current: %s", s->cfg.name, s->cfg.gpu_id, tcpx_last_error());
        tl_prev_device = -1;
    }
}

void sess_unlock(tcpx_session *s)
{
    if (s->plugin_on_gpu) tcpx_gpu_leave(tl_prev_device);
    tl_prev_device = -1;
    pthread_mutex_unlock(&s->mu);
}

void sess_own_thread_gpu(tcpx_session *s)
{
    int prev;
    if (s->plugin_on_gpu && tcpx_gpu_enter(s->gpu, &prev))
        TCPX_WARN("session %s: progress thread: %s", s->cfg.name, tcpx_last_error());
}
