/* fdtab.c: the fd -> connection table (see fdtab.h). */
#include "preload/fdtab.h"

#include <errno.h>
#include <sys/mman.h>

_Atomic(fdtab_slot *) fdtab_chunks[FDTAB_TOP_ENTRIES];

#define FDTAB_FAIL ((struct conn *)-1)

/* The slot for fd, allocating its chunk if needed. mmap, not malloc: this can run inside a hook that
 * the allocator itself called, and zeroed pages cost nothing until a TLS fd lands in them. */
static fdtab_slot *fdtab_slot_for(int fd)
{
	if ((unsigned)fd >= (unsigned)FDTAB_MAX_FD) {
		errno = EBADF;
		return NULL;
	}
	_Atomic(fdtab_slot *) *top = &fdtab_chunks[(unsigned)fd >> FDTAB_CHUNK_BITS];
	fdtab_slot *chunk = atomic_load_explicit(top, memory_order_acquire);
	if (!chunk) {
		void *mem = mmap(NULL, FDTAB_CHUNK_SIZE * sizeof(fdtab_slot), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			errno = ENOMEM;
			return NULL;
		}
		fdtab_slot *expected = NULL;
		if (atomic_compare_exchange_strong_explicit(top, &expected, (fdtab_slot *)mem,
							    memory_order_acq_rel, memory_order_acquire)) {
			chunk = mem;
		} else { /* another thread installed one first */
			munmap(mem, FDTAB_CHUNK_SIZE * sizeof(fdtab_slot));
			chunk = expected;
		}
	}
	return &chunk[(unsigned)fd & (FDTAB_CHUNK_SIZE - 1)];
}

struct conn *fdtab_store(int fd, struct conn *c)
{
	fdtab_slot *slot = fdtab_slot_for(fd);
	if (!slot)
		return FDTAB_FAIL;
	return atomic_exchange_explicit(slot, c, memory_order_acq_rel);
}

struct conn *fdtab_take(int fd)
{
	if (!fdtab_load(fd))
		return NULL;
	fdtab_slot *slot = fdtab_slot_for(fd);
	return slot ? atomic_exchange_explicit(slot, NULL, memory_order_acq_rel) : NULL;
}

_Bool fdtab_replace(int fd, struct conn *expected, struct conn *desired)
{
	fdtab_slot *slot = fdtab_slot_for(fd);
	if (!slot)
		return 0;
	return atomic_compare_exchange_strong_explicit(slot, &expected, desired, memory_order_acq_rel,
						       memory_order_acquire);
}

int fdtab_next(int from, int to)
{
	if (from < 0)
		from = 0;
	if (to >= FDTAB_MAX_FD)
		to = FDTAB_MAX_FD - 1;
	for (int fd = from; fd <= to;) {
		fdtab_slot *chunk = atomic_load_explicit(&fdtab_chunks[(unsigned)fd >> FDTAB_CHUNK_BITS],
							 memory_order_acquire);
		if (!chunk) {
			fd = (int)(((unsigned)fd >> FDTAB_CHUNK_BITS) + 1) << FDTAB_CHUNK_BITS;
			continue;
		}
		if (atomic_load_explicit(&chunk[(unsigned)fd & (FDTAB_CHUNK_SIZE - 1)], memory_order_acquire))
			return fd;
		fd++;
	}
	return -1;
}
