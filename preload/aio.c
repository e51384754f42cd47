/* aio.c: POSIX AIO (aio_read, aio_write, aio_fsync, lio_listio and their 64 forms). glibc performs
 * the transfers on helper threads with internal calls no hook sees, so a request on a TLS fd would move
 * plaintext. Such requests are refused at submission with EOPNOTSUPP and one reason line (lio_listio:
 * per aiocb, as its contract says: the others run, the refused ones report EOPNOTSUPP through
 * aio_error, and the call returns -1 with EIO). Emulating AIO would need a thread pool inside the
 * program. Requests on other fds go to libc untouched.
 * Symbol versions: glibc 2.34 moved these from librt into libc and keeps the old versions as compat
 * symbols (GLIBC_2.2.5, and GLIBC_2.4 for lio_listio). The shim's symbols carry no version, and the
 * dynamic loader binds a reference to any version of the name to an unversioned definition, so every
 * version reaches these hooks (tests/clients/routes.c links the GLIBC_2.2.5 ones to prove it). */
#include "preload/hooks.h"
#include "preload/log.h"

#include <aio.h>
#include <stdlib.h>

static int refuse(const char *call, int fd)
{
	log_msg(LOG_ERROR,
		"fd %d: %s on a TLS socket would bypass TLS (glibc's AIO threads write past the shim); "
		"refused with EOPNOTSUPP; use read/write or poll on it",
		fd, call);
	errno = EOPNOTSUPP;
	return -1;
}

static int unresolved(void)
{
	errno = ENOSYS;
	return -1;
}

static bool aiocb_is_tls(const struct aiocb *cb)
{
	return cb && fdtab_load(cb->aio_fildes) != NULL;
}

static bool aiocb64_is_tls(const struct aiocb64 *cb)
{
	return cb && fdtab_load(cb->aio_fildes) != NULL;
}

EXPORT int aio_read(struct aiocb *cb)
{
	libc_ensure();
	if (aiocb_is_tls(cb))
		return refuse("aio_read", cb->aio_fildes);
	return libc.aio_read ? libc.aio_read(cb) : unresolved();
}

EXPORT int aio_write(struct aiocb *cb)
{
	libc_ensure();
	if (aiocb_is_tls(cb))
		return refuse("aio_write", cb->aio_fildes);
	return libc.aio_write ? libc.aio_write(cb) : unresolved();
}

EXPORT int aio_fsync(int op, struct aiocb *cb)
{
	libc_ensure();
	if (aiocb_is_tls(cb))
		return refuse("aio_fsync", cb->aio_fildes);
	return libc.aio_fsync ? libc.aio_fsync(op, cb) : unresolved();
}

/* lio_listio: refused entries are marked failed (what aio_error/aio_return report) and left out of
 * the list libc gets (NULL entries are skipped by contract). */
static int lio_common(int mode, struct aiocb *const list[], int nent, struct sigevent *sig, bool is64)
{
	libc_ensure();
	int (*real)(int, struct aiocb *const[], int, struct sigevent *) =
	    is64 ? (int (*)(int, struct aiocb *const[], int, struct sigevent *))libc.lio_listio64
		 : libc.lio_listio;
	if (!real)
		return unresolved();
	int n_tls = 0;
	for (int i = 0; list && i < nent; i++)
		if (list[i] && list[i]->aio_lio_opcode != LIO_NOP && aiocb_is_tls(list[i]))
			n_tls++;
	if (n_tls == 0)
		return real(mode, list, nent, sig);
	struct aiocb **kept = calloc((size_t)nent, sizeof(*kept));
	if (!kept) {
		errno = EAGAIN; /* lio_listio's "resources unavailable": nothing was queued */
		return -1;
	}
	for (int i = 0; i < nent; i++) {
		struct aiocb *cb = list[i];
		if (cb && cb->aio_lio_opcode != LIO_NOP && aiocb_is_tls(cb)) {
			refuse(is64 ? "lio_listio64" : "lio_listio", cb->aio_fildes);
			cb->__error_code = EOPNOTSUPP;
			cb->__return_value = -1;
		} else {
			kept[i] = cb;
		}
	}
	int r = real(mode, kept, nent, sig);
	int e = errno;
	free(kept);
	errno = r == 0 ? EIO : e;
	return -1;
}

EXPORT int lio_listio(int mode, struct aiocb *const list[], int nent, struct sigevent *sig)
{
	return lio_common(mode, list, nent, sig, false);
}

EXPORT int aio_read64(struct aiocb64 *cb)
{
	libc_ensure();
	if (aiocb64_is_tls(cb))
		return refuse("aio_read64", cb->aio_fildes);
	return libc.aio_read64 ? libc.aio_read64(cb) : unresolved();
}

EXPORT int aio_write64(struct aiocb64 *cb)
{
	libc_ensure();
	if (aiocb64_is_tls(cb))
		return refuse("aio_write64", cb->aio_fildes);
	return libc.aio_write64 ? libc.aio_write64(cb) : unresolved();
}

EXPORT int aio_fsync64(int op, struct aiocb64 *cb)
{
	libc_ensure();
	if (aiocb64_is_tls(cb))
		return refuse("aio_fsync64", cb->aio_fildes);
	return libc.aio_fsync64 ? libc.aio_fsync64(op, cb) : unresolved();
}

EXPORT int lio_listio64(int mode, struct aiocb64 *const list[], int nent, struct sigevent *sig)
{
	/* struct aiocb64 is struct aiocb with a 64-bit offset; on LP64 the two are one layout. */
	_Static_assert(sizeof(struct aiocb64) == sizeof(struct aiocb), "aiocb64 layout");
	return lio_common(mode, (struct aiocb *const *)list, nent, sig, true);
}
