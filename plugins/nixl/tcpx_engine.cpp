// tcpx_engine.cpp - nixlBackendEngine methods over tcpx_p2p.h (see tcpx_engine.h).
#include "tcpx_engine.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/nixl_log.h"
#include "tcpx_status_map.h"

namespace {

// A local registration (registerMem) or a peer's, as loaded (loadRemoteMD,
// loadLocalMD): what a descriptor's offset is measured from.
struct TcpxMD : public nixlBackendMD {
    explicit TcpxMD(bool is_private) : nixlBackendMD(is_private) {}
    tcpx_mem_id id = 0;        // local registrations only
    tcpx_memdesc desc{};       // the registration's descriptor (ours or the peer's)
};

// One prepared transfer: the list of blocks, re-posted as a fresh tcpx
// transfer by every postXfer.
struct TcpxReq : public nixlBackendReqH {
    nixl_xfer_op_t op = NIXL_WRITE;
    std::string peer;
    std::vector<tcpx_memdesc> remotes;  // one per block: what the blocks point at
    std::vector<tcpx_block> blocks;
    std::string notif;
    bool has_notif = false;
    bool waiting_connect = false;       // posted before the peer was connected
    bool finished = false;              // checkXfer saw it complete
    tcpx_xfer *x = nullptr;
};

nixl_status_t fail(const char *what, tcpx_status st)
{
    NIXL_ERROR << "TCPX: " << what << ": " << tcpx_strerror(st) << ": " << tcpx_last_error();
    return tcpx_to_nixl(st);
}

// A backend parameter as an int into *out (left alone when not given or
// empty); false, logged, when malformed.
bool int_param(const nixl_b_params_t &p, const char *key, long lo, long hi, long *out)
{
    auto it = p.find(key);
    if (it == p.end() || it->second.empty()) return true; // "" is what get_backend_options lists: the default
    char *end = nullptr;
    long v = std::strtol(it->second.c_str(), &end, 0);
    if (*end || v < lo || v > hi) {
        NIXL_ERROR << "TCPX: backend parameter " << key << "=\"" << it->second << "\": expected an integer in " << lo
                   << ".." << hi;
        return false;
    }
    *out = v;
    return true;
}

bool str_param(const nixl_b_params_t &p, const char *key, char *dst, size_t cap)
{
    auto it = p.find(key);
    if (it == p.end() || it->second.empty()) return true;
    if (it->second.size() >= cap) {
        NIXL_ERROR << "TCPX: backend parameter " << key << " is longer than " << cap - 1 << " characters";
        return false;
    }
    std::memcpy(dst, it->second.c_str(), it->second.size() + 1);
    return true;
}

} // namespace

const char *const kTcpxParams[] = {"channels", "gpu", "transport", "chunk_bytes", "socks_per_comm", "bind_addr",
                                   "peer_timeout_ms", nullptr};

nixlTcpxEngine::nixlTcpxEngine(const nixlBackendInitParams *init) : nixlBackendEngine(init)
{
    tcpx_config cfg;
    tcpx_config_init(&cfg);
    const nixl_b_params_t &p = getCustomParams();
    // The session's GPU: the `gpu` parameter, else that of the first VRAM
    // registration (gpu_id -2). TCPX_* environment variables win over both.
    long gpu = -2, channels = cfg.channels, chunk = (long)cfg.chunk_bytes, socks = cfg.socks_per_comm,
         timeout = cfg.peer_timeout_ms;
    bool ok = int_param(p, "gpu", -2, 1024, &gpu) && int_param(p, "channels", 1, TCPX_MAX_CHANNELS, &channels) &&
              int_param(p, "chunk_bytes", 4096, 1L << 30, &chunk) && int_param(p, "socks_per_comm", 1, 16, &socks) &&
              int_param(p, "peer_timeout_ms", 1, 1L << 30, &timeout);
    cfg.gpu_id = (int)gpu;
    cfg.channels = (int)channels;
    cfg.chunk_bytes = (size_t)chunk;
    cfg.socks_per_comm = (int)socks;
    cfg.peer_timeout_ms = (int)timeout;
    ok = ok && str_param(p, "transport", cfg.transport, sizeof cfg.transport);
    ok = ok && str_param(p, "bind_addr", cfg.bind_addr, sizeof cfg.bind_addr);
    if (localAgent.empty() || localAgent.size() >= sizeof cfg.name) {
        NIXL_ERROR << "TCPX: agent name \"" << localAgent << "\" must have 1.." << sizeof cfg.name - 1 << " characters";
        ok = false;
    }
    if (!ok) {
        initErr = true;
        return;
    }
    std::snprintf(cfg.name, sizeof cfg.name, "%s", localAgent.c_str());
    cfg.accept_any = 1; // peers that load our info connect; the progress thread serves them
    tcpx_status st = tcpx_session_create(&cfg, &session_);
    const void *blob = nullptr;
    size_t len = 0;
    if (!st) st = tcpx_session_listen(session_, &blob, &len);
    if (st) {
        fail("cannot create the session", st);
        initErr = true;
        return;
    }
    conn_info_.assign(static_cast<const char *>(blob), len);
    const tcpx_config *c = tcpx_session_config(session_);
    NIXL_INFO << "TCPX: agent " << localAgent << ": transport " << tcpx_session_transport(session_) << ", "
              << c->channels << " channels, chunk " << c->chunk_bytes << ", gpu " << c->gpu_id;
}

nixlTcpxEngine::~nixlTcpxEngine()
{
    {
        std::lock_guard<std::mutex> g(zombies_mu_);
        for (tcpx_xfer *x : zombies_) tcpx_xfer_release(x); // bounded by the peer timeout
        zombies_.clear();
    }
    tcpx_session_destroy(session_);
}

void nixlTcpxEngine::reapZombies() const
{
    std::lock_guard<std::mutex> g(zombies_mu_);
    for (size_t i = 0; i < zombies_.size();) {
        if (tcpx_xfer_test(zombies_[i]) == TCPX_IN_PROGRESS) {
            i++;
            continue;
        }
        tcpx_xfer_release(zombies_[i]);
        zombies_[i] = zombies_.back();
        zombies_.pop_back();
    }
}

// ------------------------------------------------------------------ memory

nixl_status_t nixlTcpxEngine::registerMem(const nixlBlobDesc &mem, const nixl_mem_t &nixl_mem, nixlBackendMD *&out)
{
    if (nixl_mem != DRAM_SEG && nixl_mem != VRAM_SEG) return NIXL_ERR_NOT_SUPPORTED;
    auto md = std::make_unique<TcpxMD>(true);
    tcpx_mem_kind kind = nixl_mem == VRAM_SEG ? TCPX_MEM_CUDA : TCPX_MEM_HOST;
    tcpx_status st = tcpx_mem_register(session_, reinterpret_cast<void *>(mem.addr), mem.len, kind, &md->id);
    if (!st) st = tcpx_memdesc_get(session_, md->id, &md->desc);
    if (st) return fail(nixl_mem == VRAM_SEG ? "registerMem (VRAM)" : "registerMem (DRAM)", st);
    out = md.release();
    return NIXL_SUCCESS;
}

nixl_status_t nixlTcpxEngine::deregisterMem(nixlBackendMD *meta)
{
    auto *md = static_cast<TcpxMD *>(meta);
    reapZombies();
    tcpx_status st = tcpx_mem_deregister(session_, md->id);
    if (st == TCPX_ERR_INVALID) { // released requests may still use it: let them finish
        {
            std::lock_guard<std::mutex> g(zombies_mu_);
            for (tcpx_xfer *x : zombies_) tcpx_xfer_release(x);
            zombies_.clear();
        }
        st = tcpx_mem_deregister(session_, md->id);
    }
    if (st) return fail("deregisterMem", st);
    delete md;
    return NIXL_SUCCESS;
}

nixl_status_t nixlTcpxEngine::getPublicData(const nixlBackendMD *meta, std::string &str) const
{
    const auto *md = static_cast<const TcpxMD *>(meta);
    char blob[TCPX_MEMDESC_BLOB_SIZE];
    size_t len = 0;
    tcpx_status st = tcpx_memdesc_serialize(&md->desc, blob, sizeof blob, &len);
    if (st) return fail("getPublicData", st);
    str.assign(blob, len);
    return NIXL_SUCCESS;
}

nixl_status_t nixlTcpxEngine::loadRemoteMD(const nixlBlobDesc &input, const nixl_mem_t &nixl_mem,
                                           const std::string &remote_agent, nixlBackendMD *&output)
{
    auto md = std::make_unique<TcpxMD>(false);
    tcpx_status st = tcpx_memdesc_deserialize(input.metaInfo.data(), input.metaInfo.size(), &md->desc);
    if (st) return fail("loadRemoteMD: a descriptor blob that is not ours", st);
    output = md.release();
    return NIXL_SUCCESS;
}

nixl_status_t nixlTcpxEngine::loadLocalMD(nixlBackendMD *input, nixlBackendMD *&output)
{
    auto md = std::make_unique<TcpxMD>(false);
    md->desc = static_cast<TcpxMD *>(input)->desc; // our own registration, as a peer would name it
    output = md.release();
    return NIXL_SUCCESS;
}

nixl_status_t nixlTcpxEngine::unloadMD(nixlBackendMD *input)
{
    delete static_cast<TcpxMD *>(input);
    return NIXL_SUCCESS;
}

// ----------------------------------------------------------- connections

nixl_status_t nixlTcpxEngine::getConnInfo(std::string &str) const
{
    str = conn_info_;
    return NIXL_SUCCESS;
}

nixl_status_t nixlTcpxEngine::loadRemoteConnInfo(const std::string &remote_agent, const std::string &remote_conn_info)
{
    tcpx_status st = tcpx_session_load_remote(session_, remote_agent.c_str(), remote_conn_info.data(),
                                              remote_conn_info.size());
    return st ? fail("loadRemoteConnInfo", st) : NIXL_SUCCESS;
}

nixl_status_t nixlTcpxEngine::connect(const std::string &remote_agent)
{
    // The agent connects a backend to itself at creation (local transfers):
    // load our own info under our name; the connection is made at the first
    // local transfer, as for any peer whose connect was never called.
    if (remote_agent == localAgent) {
        tcpx_status st = tcpx_session_load_remote(session_, localAgent.c_str(), conn_info_.data(), conn_info_.size());
        return st ? fail("connect (to itself)", st) : NIXL_SUCCESS;
    }
    tcpx_status st = tcpx_session_connect(session_, remote_agent.c_str());
    return st ? fail("connect", st) : NIXL_SUCCESS;
}

nixl_status_t nixlTcpxEngine::disconnect(const std::string &remote_agent)
{
    tcpx_status st = tcpx_session_disconnect(session_, remote_agent.c_str());
    return st && st != TCPX_ERR_NOT_FOUND ? fail("disconnect", st) : NIXL_SUCCESS;
}

// ------------------------------------------------------------- transfers

nixl_status_t nixlTcpxEngine::prepXfer(const nixl_xfer_op_t &operation, const nixl_meta_dlist_t &local,
                                       const nixl_meta_dlist_t &remote, const std::string &remote_agent,
                                       nixlBackendReqH *&handle, const nixl_opt_b_args_t *opt_args) const
{
    int n = local.descCount();
    if (n != remote.descCount()) {
        NIXL_ERROR << "TCPX: prepXfer: " << n << " local and " << remote.descCount() << " remote descriptors";
        return NIXL_ERR_INVALID_PARAM;
    }
    auto req = std::make_unique<TcpxReq>();
    req->op = operation;
    req->peer = remote_agent;
    req->remotes.resize(n);
    req->blocks.resize(n);
    for (int i = 0; i < n; i++) {
        const nixlMetaDesc &l = local[i], &r = remote[i];
        const auto *lmd = static_cast<const TcpxMD *>(l.metadataP);
        const auto *rmd = static_cast<const TcpxMD *>(r.metadataP);
        if (l.len != r.len || !lmd || !rmd || l.addr < lmd->desc.addr || r.addr < rmd->desc.addr) {
            NIXL_ERROR << "TCPX: prepXfer: descriptor " << i << " (" << l.len << " bytes local, " << r.len
                       << " remote) does not fit its registrations";
            return NIXL_ERR_INVALID_PARAM;
        }
        req->remotes[i] = rmd->desc;
        req->blocks[i] = tcpx_block{lmd->id, static_cast<size_t>(l.addr - lmd->desc.addr), nullptr,
                                    static_cast<uint64_t>(r.addr - rmd->desc.addr), l.len};
    }
    for (int i = 0; i < n; i++) req->blocks[i].remote = &req->remotes[i];
    handle = req.release();
    return NIXL_SUCCESS;
}

// Post the request's list as a new tcpx transfer (the peer is connected).
static nixl_status_t post_now(tcpx_session *s, TcpxReq *req)
{
    tcpx_status st = tcpx_xfer_create(s, req->peer.c_str(), &req->x);
    tcpx_notif_msg nm{req->notif.data(), req->notif.size()};
    const tcpx_notif_msg *note = req->has_notif ? &nm : nullptr;
    if (!st)
        st = req->op == NIXL_WRITE ? tcpx_xfer_post_write_list(req->x, req->blocks.size(), req->blocks.data(), note)
                                   : tcpx_xfer_post_read_list(req->x, req->blocks.size(), req->blocks.data(), note);
    req->finished = false;
    // The post has pushed what it could; an answer cannot have come yet, so
    // no round is run for it here (checkXfer's job).
    if (!st) return NIXL_IN_PROG;
    return fail(req->op == NIXL_WRITE ? "WRITE" : "READ", st);
}

nixl_status_t nixlTcpxEngine::postXfer(const nixl_xfer_op_t &operation, const nixl_meta_dlist_t &local,
                                       const nixl_meta_dlist_t &remote, const std::string &remote_agent,
                                       nixlBackendReqH *&handle, const nixl_opt_b_args_t *opt_args) const
{
    auto *req = static_cast<TcpxReq *>(handle);
    reapZombies();
    if (req->x) { // a repost: the earlier transfer must be over
        tcpx_status st = req->finished ? TCPX_OK : tcpx_xfer_test(req->x);
        if (st == TCPX_IN_PROGRESS) return NIXL_ERR_REPOST_ACTIVE;
        tcpx_xfer_release(req->x);
        req->x = nullptr;
    }
    req->has_notif = opt_args && opt_args->hasNotif;
    req->notif = req->has_notif ? opt_args->notifMsg : std::string();
    // A peer whose connect was never called is connected now, without
    // waiting: checkXfer posts the list once it is up.
    tcpx_status st = tcpx_session_peer_status(session_, remote_agent.c_str());
    if (st != TCPX_OK) st = tcpx_session_connect_start(session_, remote_agent.c_str());
    if (st == TCPX_IN_PROGRESS) {
        req->waiting_connect = true;
        return NIXL_IN_PROG;
    }
    if (st) return fail("postXfer: connecting", st);
    req->waiting_connect = false;
    return post_now(session_, req);
}

nixl_status_t nixlTcpxEngine::checkXfer(nixlBackendReqH *handle) const
{
    auto *req = static_cast<TcpxReq *>(handle);
    if (req->waiting_connect) {
        tcpx_status st = tcpx_session_peer_status(session_, req->peer.c_str());
        if (st == TCPX_IN_PROGRESS) return NIXL_IN_PROG;
        if (st) return fail("connecting", st);
        req->waiting_connect = false;
        return post_now(session_, req);
    }
    if (!req->x) return NIXL_ERR_NOT_POSTED;
    if (req->finished) return NIXL_SUCCESS;
    tcpx_status st = tcpx_xfer_test(req->x);
    if (st == TCPX_OK) {
        req->finished = true;
        return NIXL_SUCCESS;
    }
    if (st == TCPX_IN_PROGRESS) return NIXL_IN_PROG;
    return fail(req->op == NIXL_WRITE ? "WRITE" : "READ", st);
}

nixl_status_t nixlTcpxEngine::releaseReqH(nixlBackendReqH *handle) const
{
    auto *req = static_cast<TcpxReq *>(handle);
    if (req->x) {
        // A transfer not seen complete may still move bytes: it finishes in
        // the background (its registrations cannot be deregistered
        // meanwhile) and is reaped by later calls; release never waits, not
        // even for the session.
        if (!req->finished) {
            std::lock_guard<std::mutex> g(zombies_mu_);
            zombies_.push_back(req->x);
        } else {
            tcpx_xfer_release(req->x);
        }
    }
    delete req;
    return NIXL_SUCCESS;
}

// --------------------------------------------------------- notifications

nixl_status_t nixlTcpxEngine::getNotifs(notif_list_t &notif_list)
{
    reapZombies();
    // Callers poll this in a loop: the buffer is the thread's own, not a
    // fresh 8 KiB string cleared on every call.
    thread_local char buf[TCPX_NOTIF_MAX];
    char from[TCPX_NAME_MAX];
    for (;;) {
        size_t len = 0;
        tcpx_status st = tcpx_notify_poll(session_, from, sizeof from, buf, sizeof buf, &len);
        if (st == TCPX_IN_PROGRESS) return NIXL_SUCCESS;
        if (st) return fail("getNotifs", st);
        notif_list.emplace_back(std::string(from), std::string(buf, len));
    }
}

nixl_status_t nixlTcpxEngine::genNotif(const std::string &remote_agent, const std::string &msg) const
{
    tcpx_status st = tcpx_session_peer_status(session_, remote_agent.c_str());
    if (st) st = tcpx_session_connect(session_, remote_agent.c_str());
    if (!st) st = tcpx_notify_send(session_, remote_agent.c_str(), msg.data(), msg.size());
    return st ? fail("genNotif", st) : NIXL_SUCCESS;
}
