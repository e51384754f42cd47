/* precopy.h: copies of a TCP socket made before it connected.
 *
 * `d = dup(s); connect(s, tls destination); write(d, ...)`: d is the same socket as s, so the shim must
 * treat it as the same connection. The dup hooks cannot decide at the copy (nothing is connected yet),
 * so they note such copies here, by socket inode; the TLS connect of any of them takes the note and
 * installs the connection on every copy before the kernel connect, so no copy is ever a plain route to
 * a tls destination. A plain connect leaves the copies plain, as the kernel does.
 *
 * Only unconnected AF_INET/AF_INET6 stream sockets are noted, only while the policy has tls rules: at
 * socket() and at a copy (dup, dup2, dup3, F_DUPFD*); a connect or listen drops the notes of its socket.
 * The pass-through paths of read and write are untouched.
 *
 * A fork() child receives the notes with its memory: there, each noted copy is marked for classification
 * on first use (inherit.h), since its sibling's connect happens in another process. */
#ifndef TLSSHIM_PRECOPY_H
#define TLSSHIM_PRECOPY_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

/* After the kernel made newfd a copy of oldfd, whose slot was empty: notes both if they are an
 * unconnected TCP socket. If oldfd became TLS meanwhile (another thread's connect), newfd shares its
 * connection at once. Returns newfd (also when it is -1: the kernel call failed), or -1 with errno
 * EBADF when the copy could not be tracked and was closed. */
int precopy_note(int oldfd, int newfd);

/* socket() made fd: an AF_INET/AF_INET6 stream socket is noted (while the policy has tls rules), so that
 * a fork() child holding it before it connects is covered too. */
void precopy_note_socket(int fd, int domain, int type);

/* fd's socket connected plain (or listens): its notes and its copies' go; they are plain for good. */
void precopy_forget(int fd);

/* The copies noted for fd's socket, at a TLS connect of fd (after fd's own slot holds c): each gets c
 * (conn_attach_fd) and the note is dropped. Returns how many, or -1 with errno when a copy cannot be
 * tracked (the caller refuses the connect and calls precopy_undo). */
int precopy_attach(struct conn *c, int fd);

/* The TLS connect did not happen after all (TCP failed): the copies that precopy_attach gave c go back
 * to plain, noted again. */
void precopy_undo(struct conn *c, int fd);

/* A fork() child: every noted copy is marked for classification on first use (the atfork child
 * handler). */
void precopy_atfork_child(void);

/* True for an unconnected TCP socket that is not listening (inherit.c keeps such a socket marked). */
bool precopy_unconnected_tcp(int fd);

#endif
