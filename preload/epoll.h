/* epoll.h: the per-epoll-set readiness layer (epoll.c). What the other files call. */
#ifndef TLSSHIM_EPOLL_H
#define TLSSHIM_EPOLL_H

/* fd is being closed (or replaced by dup2/dup3): a TLS fd leaves every set it is registered in; an
 * epoll set's own number drops the shim's table of it. For a plain fd that is no epoll set this is one
 * atomic load (no lock). Called before the kernel closes fd. */
void epoll_forget_fd(int fd);

/* fd has just become a TLS socket (connect to a tls destination): registrations the program made on it
 * while it was still a plain socket (nginx adds its upstream socket before connect()) are taken over
 * from the kernel sets into the shim's tables. */
void epoll_adopt_fd(int fd);

#endif
