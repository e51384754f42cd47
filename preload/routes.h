/* routes.h: what the route-closing files share (aio.c, syscall.c, aliases.c, udp.c): the calls that
 * reach a socket by some way other than the ordinary hooks, and the policy's verdict for datagrams. */
#ifndef TLSSHIM_ROUTES_H
#define TLSSHIM_ROUTES_H

#include <sys/socket.h>

/* glibc >= 2.36 declares it in <sys/pidfd.h>; declared here so older headers build too. */
int pidfd_getfd(int pidfd, int targetfd, unsigned int flags);

/* `deny` for sockets that are not TCP (UDP, raw, ...) and for sends that carry an address: 0 when the
 * policy allows sending from fd to sa (plain, tls or no rule: tls rules apply to TCP only), -1 with
 * errno EACCES and one reason line when a deny rule matches (or the policy did not load). The verdict
 * is cached per socket and destination, so repeated sends cost a few loads (udp.c). */
int udp_check_dest(int fd, const struct sockaddr *sa, socklen_t salen);

/* A socket that arrived from another process (pidfd_getfd): refuses it (closing it, -1/EACCES with a
 * reason) when its peer matches a tls rule, since a TLS session cannot continue in this process and
 * plaintext would reach that destination; returns fd otherwise (aliases.c). */
int routes_check_foreign_socket(int fd, const char *how);

#endif
