/* names.c: the address -> name memory (see names.h). */
#include "preload/names.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct name_entry {
	int family; /* 0: unused */
	uint8_t addr[16];
	unsigned long long used; /* LRU clock */
	char name[NAMES_MAX_LEN + 1];
};

/* The process's memory of resolver answers: written by the resolver hooks, read by connect; both
 * under names_lock. A linear scan of 1024 entries costs less than the connect it serves. */
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct name_entry names[NAMES_CAPACITY];
static unsigned long long names_clock;
/* Bumped (under names_lock) when a mapping is added or changes; read lock-free by names_generation. */
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
	for (size_t i = 0; i < NAMES_CAPACITY; i++)
		if (names[i].family == family && memcmp(names[i].addr, addr, alen) == 0)
			return &names[i];
	return NULL;
}

void names_remember(const char *name, int family, const void *addr_in, bool *replaced, char *prev,
		    size_t prev_len)
{
	const uint8_t *addr = addr_in;
	if (replaced)
		*replaced = false;
	if (!name || (family != AF_INET && family != AF_INET6))
		return;
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > NAMES_MAX_LEN)
		return;
	normalise(&family, &addr);
	pthread_mutex_lock(&names_lock);
	struct name_entry *e = find(family, addr);
	if (e && strcasecmp(e->name, name) != 0) {
		if (replaced)
			*replaced = true;
		if (prev && prev_len) {
			strncpy(prev, e->name, prev_len - 1);
			prev[prev_len - 1] = '\0';
		}
	}
	if (!e) {
		e = &names[0];
		for (size_t i = 0; i < NAMES_CAPACITY; i++) {
			if (names[i].family == 0) {
				e = &names[i];
				break;
			}
			if (names[i].used < e->used)
				e = &names[i];
		}
		e->family = family;
		memcpy(e->addr, addr, family == AF_INET ? 4 : 16);
		e->name[0] = '\0'; /* a new mapping: counted below */
	}
	if (strcmp(e->name, name) != 0) {
		memcpy(e->name, name, nlen + 1);
		atomic_fetch_add_explicit(&names_gen, 1, memory_order_release);
	}
	e->used = ++names_clock;
	pthread_mutex_unlock(&names_lock);
}

bool names_lookup(int family, const void *addr_in, char *out, size_t out_len)
{
	const uint8_t *addr = addr_in;
	if (family != AF_INET && family != AF_INET6)
		return false;
	normalise(&family, &addr);
	pthread_mutex_lock(&names_lock);
	struct name_entry *e = find(family, addr);
	bool found = e != NULL && out_len > strlen(e->name);
	if (found) {
		strcpy(out, e->name);
		e->used = ++names_clock;
	}
	pthread_mutex_unlock(&names_lock);
	return found;
}

void names_clear(void)
{
	pthread_mutex_lock(&names_lock);
	memset(names, 0, sizeof(names));
	names_clock = 0;
	atomic_fetch_add_explicit(&names_gen, 1, memory_order_release);
	pthread_mutex_unlock(&names_lock);
}

unsigned long names_generation(void)
{
	return atomic_load_explicit(&names_gen, memory_order_acquire);
}
