// tcpx_engine.h - the NIXL backend "TCPX": one tcpx-p2p session per engine.
//
// Every method is a few lines over the public C API (tcpx_p2p.h); nothing
// here moves bytes. The session is created with the agent's name and
// accept_any, so peers that load our connection info connect to us and are
// served by the session's own progress thread (NIXL's enableProgTh and
// pthrDelay are not needed and not used: see README, "Using tcpx-p2p from
// NIXL").
//
// Metadata: a local registration is a tcpx memory id; what getPublicData
// hands out (and loadRemoteMD takes) is the registration's serialized
// tcpx_memdesc (48 bytes). A descriptor's offset into a registration is its
// address minus the registration's base address.
#ifndef TCPX_NIXL_ENGINE_H
#define TCPX_NIXL_ENGINE_H

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend_engine.h"
#include "tcpx_p2p.h"

// Backend parameters (get_backend_options lists them; TCPX_* still wins).
extern const char *const kTcpxParams[];

class nixlTcpxEngine : public nixlBackendEngine {
public:
    explicit nixlTcpxEngine(const nixlBackendInitParams *init);
    ~nixlTcpxEngine() override;

    bool supportsRemote() const override { return true; }
    bool supportsLocal() const override { return true; }
    bool supportsNotif() const override { return true; }
    nixl_mem_list_t getSupportedMems() const override { return {DRAM_SEG, VRAM_SEG}; }

    nixl_status_t registerMem(const nixlBlobDesc &mem, const nixl_mem_t &nixl_mem, nixlBackendMD *&out) override;
    nixl_status_t deregisterMem(nixlBackendMD *meta) override;
    nixl_status_t getPublicData(const nixlBackendMD *meta, std::string &str) const override;
    nixl_status_t loadRemoteMD(const nixlBlobDesc &input, const nixl_mem_t &nixl_mem, const std::string &remote_agent,
                               nixlBackendMD *&output) override;
    nixl_status_t loadLocalMD(nixlBackendMD *input, nixlBackendMD *&output) override;
    nixl_status_t unloadMD(nixlBackendMD *input) override;

    nixl_status_t getConnInfo(std::string &str) const override;
    nixl_status_t loadRemoteConnInfo(const std::string &remote_agent, const std::string &remote_conn_info) override;
    nixl_status_t connect(const std::string &remote_agent) override;
    nixl_status_t disconnect(const std::string &remote_agent) override;

    nixl_status_t prepXfer(const nixl_xfer_op_t &operation, const nixl_meta_dlist_t &local,
                           const nixl_meta_dlist_t &remote, const std::string &remote_agent, nixlBackendReqH *&handle,
                           const nixl_opt_b_args_t *opt_args = nullptr) const override;
    nixl_status_t postXfer(const nixl_xfer_op_t &operation, const nixl_meta_dlist_t &local,
                           const nixl_meta_dlist_t &remote, const std::string &remote_agent, nixlBackendReqH *&handle,
                           const nixl_opt_b_args_t *opt_args = nullptr) const override;
    nixl_status_t checkXfer(nixlBackendReqH *handle) const override;
    nixl_status_t releaseReqH(nixlBackendReqH *handle) const override;

    nixl_status_t getNotifs(notif_list_t &notif_list) override;
    nixl_status_t genNotif(const std::string &remote_agent, const std::string &msg) const override;

private:
    tcpx_session *session_ = nullptr;
    std::string conn_info_;
    // Requests released while their bytes still moved: finished (and freed)
    // by later calls, so that releaseReqH never waits.
    mutable std::mutex zombies_mu_;
    mutable std::vector<tcpx_xfer *> zombies_;

    void reapZombies() const;
};

#endif
