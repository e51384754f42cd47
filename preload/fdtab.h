/* fdtab.h: file descriptor -> TLS connection, for every fd number the kernel can hand out.
 * A two-level table: a static top array (BSS: costs no memory until touched, works before any
 * constructor) of lazily allocated chunks. A chunk, once installed, is never freed, so a lookup is
 * two loads with no lock: the pass-through path of every hook. The top array has an entry for every
 * 32-bit value shifted by FDTAB_CHUNK_BITS (2^20 entries, 8 MiB of BSS that is never touched beyond
 * the chunks in use), so a lookup needs no bounds check: any int, even a negative one, indexes it, and
 * only fds below FDTAB_MAX_FD ever get a chunk.
 * The table does not own the connections: conn.c counts references and frees them. */
#ifndef TLSSHIM_FDTAB_H
#define TLSSHIM_FDTAB_H

#include <stdatomic.h>
#include <stddef.h>

struct conn;

#define FDTAB_CHUNK_BITS 12
#define FDTAB_CHUNK_SIZE (1u << FDTAB_CHUNK_BITS)
#define FDTAB_TOP_BITS	 18 /* 2^30 fds: above Linux's largest possible nr_open */
#define FDTAB_MAX_FD	 (1 << (FDTAB_CHUNK_BITS + FDTAB_TOP_BITS))

typedef _Atomic(struct conn *) fdtab_slot;

/* Entries of the top array: one per possible (unsigned)fd >> FDTAB_CHUNK_BITS. */
#define FDTAB_TOP_ENTRIES (1u << (32 - FDTAB_CHUNK_BITS))

/* The top array. Written only by fdtab_slot_for() (compare-and-swap of a NULL chunk pointer); only its
 * first 1 << FDTAB_TOP_BITS entries are ever written. Hidden, so the hooks address it directly. */
extern _Atomic(fdtab_slot *) fdtab_chunks[FDTAB_TOP_ENTRIES] __attribute__((visibility("hidden")));

/* The connection on fd, or NULL (not a TLS socket). No reference is taken: see conn_get(). */
static inline struct conn *fdtab_load(int fd)
{
	fdtab_slot *chunk =
	    atomic_load_explicit(&fdtab_chunks[(unsigned)fd >> FDTAB_CHUNK_BITS], memory_order_acquire);
	if (__builtin_expect(chunk == NULL, 1))
		return NULL;
	return atomic_load_explicit(&chunk[(unsigned)fd & (FDTAB_CHUNK_SIZE - 1)], memory_order_acquire);
}

/* Stores c for fd and returns what was there before (NULL normally). Returns (struct conn *)-1 with
 * errno set (EBADF: fd out of range, ENOMEM: no chunk) when fd cannot be held: the caller fails closed. */
struct conn *fdtab_store(int fd, struct conn *c);

/* Removes and returns fd's connection (NULL if none). */
struct conn *fdtab_take(int fd);

/* Replaces fd's entry only if it is still `expected`; true on success. */
_Bool fdtab_replace(int fd, struct conn *expected, struct conn *desired);

/* The smallest fd >= from (and <= to) that has a connection, or -1. Skips unallocated chunks. */
int fdtab_next(int from, int to);
#endif
