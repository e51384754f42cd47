/* ownfd.h: the shim's own output fds (the log destination, the SSLKEYLOGFILE), which live inside the
 * program's fd table where the program can close them (a daemon's closefrom(3)) and reuse the number
 * for its own file or socket. Before every write the fd is checked to still be the file it was opened
 * as (st_dev/st_ino); when it is not, a file is opened again from its path (lazily, on the next write)
 * and stderr is given up. A sink that is an AF_INET/AF_INET6 socket is never written to. Writes are
 * raw system calls (rawsys.h): no hook ever sees them. Never allocates, takes no lock. */
#ifndef TLSSHIM_OWNFD_H
#define TLSSHIM_OWNFD_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ownfd {
	_Atomic int fd;		   /* -1: no sink */
	_Atomic uint64_t dev, ino; /* what fd was when the shim opened or adopted it */
	atomic_flag reopening;	   /* one thread at a time reopens */
	bool reopenable;	   /* path is set: reopen when the fd was taken away */
	char path[PATH_MAX];	   /* absolute */
};

/* Opens path (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0600) into o. 0, or -1 with errno. */
int ownfd_open(struct ownfd *o, const char *path);

/* Adopts an fd the shim did not open (stderr at load): remembered as it is now; never reopened.
 * Refused (no sink) when it is closed or an AF_INET/AF_INET6 socket. */
void ownfd_adopt(struct ownfd *o, int fd);

/* Writes all of buf to the sink if it is still what it was; otherwise reopens (files) or drops the
 * bytes (stderr). Returns true when the bytes were written. */
bool ownfd_write(struct ownfd *o, const char *buf, size_t len);

#endif
