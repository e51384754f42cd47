/* inherit.h: sockets that cross a process or image boundary: inherited at load (exec), received with
 * SCM_RIGHTS, and TLS fds a program tries to send with SCM_RIGHTS.
 * An unconnected TCP socket from outside is marked too, and stays marked until it is connected.
 * A connected TCP socket that arrives from outside goes to the server side at once when a serve rule
 * matches its local address (serve_adopt_inherited); otherwise it is marked with the conn_unclassified
 * sentinel (the pass-through path of every other fd stays one load) and classified on first use by
 * conn_get(): a peer that matches a tls rule makes it refused (conn_inherited_tls: its data calls fail
 * with EBADF; a TLS session cannot continue across exec or process), else plain (the slot is cleared). The
 * name memory is empty for such sockets, so suffix rules cannot match them, and deny does not apply to them.
 */
#ifndef TLSSHIM_INHERIT_H
#define TLSSHIM_INHERIT_H

#include <stdbool.h>
#include <sys/socket.h>

/* Marks fd for classification if it is a connected TCP socket (and forgets any stale entry otherwise).
 * For every hook that hands the program an fd that came from outside (recvmsg SCM_RIGHTS; pidfd_getfd is
 * refused by aliases.c's own check). */
void inherit_adopt_fd(int fd);

/* Classifies the unclassified fd now (conn_get calls it): replaces the sentinel with the verdict
 * (INHERIT_DONE). An unconnected TCP socket keeps the sentinel (INHERIT_UNCONNECTED: the call passes
 * through; whoever connects it may be another process: a fork() sibling, the sender of an SCM_RIGHTS
 * copy, the parent image; see precopy.h). INHERIT_REFUSE when nothing may be written (a child that
 * shares its parent's memory): the caller refuses the call. */
enum { INHERIT_REFUSE, INHERIT_DONE, INHERIT_UNCONNECTED };
int inherit_classify(int fd);

/* The SCM_RIGHTS fds of a message the program received: each goes through inherit_adopt_fd. */
void inherit_adopt_received(const struct msghdr *msg);

/* -1 with errno EBADF and a reason line when msg passes a TLS fd with SCM_RIGHTS, else 0. */
int inherit_refuse_passing_tls(int fd, const struct msghdr *msg);

#endif
