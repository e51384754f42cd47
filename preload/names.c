/* names.c: the address -> candidate names memory (see names.h). */
#include "preload/names.h"
#include "preload/forkgate.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct name_entry {
	int family; /* 0: unused */
	uint8_t addr[16];
	unsigned long long used; /* LRU clock */
	struct names_set set;
};

/* The process's memory of resolver answers: written by the resolver hooks, read by connect (choose.c);
 * all of it under names_lock (taken inside the fork gate), which is never held across a call that can block.
 * `names` is allocated on the first remembered name (a process that never resolves pays nothing) and never
 * freed. A linear scan of 1024 entries costs less than the connect it serves. */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct name_entry *names;
static unsigned long long names_clock;
/* Bumped (under names_lock) when an address gets a new name; read lock-free by names_generation. */
static _Atomic unsigned long names_gen;

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void normalise(int *family, const uint8_t **addr)
{
	if (*family == AF_INET6 && memcmp(*addr, v4mapped_prefix, 12) == 0) {
		*family = AF_INET;
		*addr += 12;
	}
}

static struct name_entry *find(int family, const uint8_t *addr)
{
	size_t alen = family == AF_INET ? 4 : 16;
	if (!names)
		return NULL;
	for (size_t i = 0; i < NAMES_CAPACITY; i++)
		if (names[i].family == family && memcmp(names[i].addr, addr, alen) == 0)
			return &names[i];
	return NULL;
}

static struct name_entry *take_slot(int family, const uint8_t *addr)
{
	struct name_entry *e = &names[0];
	for (size_t i = 0; i < NAMES_CAPACITY; i++) {
		if (names[i].family == 0) {
			e = &names[i];
			break;
		}
		if (names[i].used < e->used)
			e = &names[i];
	}
	memset(e, 0, sizeof(*e));
	e->family = family;
	memcpy(e->addr, addr, family == AF_INET ? 4 : 16);
	return e;
}

size_t names_remember(const char *name, int family, const void *addr_in, char *other, size_t other_len)
{
	const uint8_t *addr = addr_in;
	if (!name || (family != AF_INET && family != AF_INET6))
		return 0;
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > NAMES_MAX_LEN)
		return 0;
	normalise(&family, &addr);
	forkgate_lock(&names_lock);
	if (!names)
		names = calloc(NAMES_CAPACITY, sizeof(*names));
	if (!names) {
		forkgate_unlock(&names_lock);
		return 0; /* nothing remembered: connects to the address verify the address itself */
	}
	struct name_entry *e = find(family, addr);
	if (!e)
		e = take_slot(family, addr);
	struct names_set *s = &e->set;
	size_t i;
	for (i = 0; i < s->n; i++)
		if (strcasecmp(s->name[i], name) == 0)
			break;
	bool added = i == s->n;
	if (other && other_len)
		other[0] = '\0';
	if (added) { /* a new candidate for this address */
		if (s->n < NAMES_PER_ADDR)
			memcpy(s->name[s->n++], name, nlen + 1);
		else
			s->crowded = true;
		atomic_fetch_add_explicit(&names_gen, 1, memory_order_release);
	}
	size_t count = s->n + (s->crowded ? 1 : 0);
	if (added && count > 1 && other && other_len) {
		const char *o = strcasecmp(s->name[0], name) != 0 ? s->name[0] : s->name[1];
		strncpy(other, o, other_len - 1);
		other[other_len - 1] = '\0';
	}
	e->used = ++names_clock;
	forkgate_unlock(&names_lock);
	return count;
}

void names_candidates(int family, const void *addr_in, struct names_set *out)
{
	const uint8_t *addr = addr_in;
	out->n = 0;
	out->crowded = false;
	if (family != AF_INET && family != AF_INET6)
		return;
	normalise(&family, &addr);
	forkgate_lock(&names_lock);
	struct name_entry *e = find(family, addr);
	if (e) {
		out->n = e->set.n;
		out->crowded = e->set.crowded;
		for (size_t i = 0; i < e->set.n; i++)
			strcpy(out->name[i], e->set.name[i]);
		e->used = ++names_clock;
	}
	forkgate_unlock(&names_lock);
}

void names_clear(void)
{
	forkgate_lock(&names_lock);
	if (names)
		memset(names, 0, NAMES_CAPACITY * sizeof(*names));
	names_clock = 0;
	atomic_fetch_add_explicit(&names_gen, 1, memory_order_release);
	forkgate_unlock(&names_lock);
}

unsigned long names_generation(void)
{
	return atomic_load_explicit(&names_gen, memory_order_acquire);
}
