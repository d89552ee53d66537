/* sock_addr.c - choosing the listen address, printing addresses, socket options. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/socket/sock.h"
#include "util/error.h"
#include "util/log.h"

static int same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family) return 0;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                       sizeof(struct in6_addr));
    return 0;
}

/* Interface that carries the bind address, and its speed from /sys. */
static void find_interface(sock_net *n)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0) return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || !same_addr(i->ifa_addr, &n->bind_ss)) continue;
        snprintf(n->ifname, sizeof n->ifname, "%s", i->ifa_name);
        break;
    }
    freeifaddrs(ifs);
    if (!n->ifname[0] || strchr(n->ifname, '/')) return;
    char path[96];
    snprintf(path, sizeof path, "/sys/class/net/%s/speed", n->ifname);
    FILE *f = fopen(path, "r");
    if (!f) return;
    int mbps = 0;
    if (fscanf(f, "%d", &mbps) == 1 && mbps > 0) n->speed_mbps = mbps;
    fclose(f);
}

static int pick_auto(sock_net *n)
{
    struct ifaddrs *ifs = NULL;
    struct sockaddr_in *sin = (struct sockaddr_in *)&n->bind_ss;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
            if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
            *sin = *(const struct sockaddr_in *)i->ifa_addr;
            sin->sin_port = 0;
            n->bind_len = sizeof *sin;
            break;
        }
        freeifaddrs(ifs);
    }
    if (!n->bind_len) {
        memset(sin, 0, sizeof *sin);
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        n->bind_len = sizeof *sin;
    }
    return TCPX_OK;
}

int sock_addr_resolve(sock_net *n, const char *bind_addr)
{
    memset(&n->bind_ss, 0, sizeof n->bind_ss);
    n->bind_len = 0;
    if (!bind_addr || !bind_addr[0]) {
        pick_auto(n);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&n->bind_ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&n->bind_ss;
        char tmp[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
        snprintf(tmp, sizeof tmp, "%s", bind_addr);
        /* Accept "[v6]" and "v6%scope" spellings too. */
        char *a = tmp;
        size_t l = strlen(a);
        if (l >= 2 && a[0] == '[' && a[l - 1] == ']') {
            a[l - 1] = '\0';
            a++;
        }
        char *scope = strchr(a, '%');
        if (scope) *scope++ = '\0';
        if (inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            n->bind_len = sizeof *sin;
        } else if (inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            if (scope) sin6->sin6_scope_id = if_nametoindex(scope);
            n->bind_len = sizeof *sin6;
        } else {
            return tcpx_set_error(TCPX_ERR_INVALID, "bind address \"%s\" is not a numeric IPv4 or IPv6 address",
                                  bind_addr);
        }
    }
    sock_addr_format((const struct sockaddr *)&n->bind_ss, n->bind_str, sizeof n->bind_str);
    find_interface(n);
    return TCPX_OK;
}

void sock_addr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    char a[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
        snprintf(buf, cap, "%s:%u", a, (unsigned)ntohs(s->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
        snprintf(buf, cap, "[%s]:%u", a, (unsigned)ntohs(s->sin6_port));
    } else {
        snprintf(buf, cap, "(address family %d)", (int)sa->sa_family);
    }
}

static void setopt(int fd, int level, int name, int val, const char *what)
{
    if (setsockopt(fd, level, name, &val, sizeof val) != 0)
        TCPX_DEBUG("socket transport: setsockopt %s=%d failed: %s", what, val, strerror(errno));
}

void sock_set_options(int fd, int peer_timeout_ms)
{
    setopt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
    setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
    if (peer_timeout_ms > 0) {
        int idle = peer_timeout_ms / 3000;
        if (idle < 1) idle = 1;
        int intvl = idle / 3;
        if (intvl < 1) intvl = 1;
        setopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle, "TCP_KEEPIDLE");
        setopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, intvl, "TCP_KEEPINTVL");
        setopt(fd, IPPROTO_TCP, TCP_KEEPCNT, 3, "TCP_KEEPCNT");
        setopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, peer_timeout_ms, "TCP_USER_TIMEOUT");
    }
}

int sock_set_nonblocking(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    int nfl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (nfl != fl && fcntl(fd, F_SETFL, nfl) < 0) return -1;
    return 0;
}
