/* gai.c: getaddrinfo_a, glibc's asynchronous resolver. Its helper threads call getaddrinfo inside libc,
 * where the getaddrinfo hook never sees them, so without these hooks the name memory would learn nothing
 * from it and `*.suffix` rules could not match its addresses. The memory learns each request's answer
 * (ar_name -> every address of ar_result) when the program can first see it: when getaddrinfo_a(GAI_WAIT)
 * returns, when gai_error() reports it done, after gai_suspend(), and before a SIGEV_THREAD notification
 * function runs. A SIGEV_SIGNAL handler that reads ar_result without calling gai_error is not seen. */
#include "preload/ailive.h"
#include "preload/forkgate.h"
#include "preload/hooks.h"
#include "preload/names.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

static bool is_name(const char *node)
{
	struct in6_addr tmp;
	return node && *node && inet_pton(AF_INET, node, &tmp) != 1 && inet_pton(AF_INET6, node, &tmp) != 1;
}

/* The requests whose answer was learned, newest last: each answer is read once, when the program can
 * first see it. A program may free ar_result and still call gai_error() on the request (it stays
 * done), and reading the freed list again would be a use after free. Written by learned_before under
 * learned_lock (held for the ring only, inside the fork gate). A request reused for a new lookup whose answer
 * lands at the same address as the last one is not learned again (the memory then lacks that name;
 * fail-closed: names only ever add candidates). */
#define LEARNED_RING 256
static struct {
	const struct gaicb *req;
	const struct addrinfo *result;
} learned[LEARNED_RING];
static unsigned learned_next;
static pthread_mutex_t learned_lock = PTHREAD_MUTEX_INITIALIZER;

static bool learned_before(const struct gaicb *req)
{
	bool seen = false;
	forkgate_lock(&learned_lock);
	for (unsigned i = 0; i < LEARNED_RING && !seen; i++)
		seen = learned[i].req == req && learned[i].result == req->ar_result;
	if (!seen) {
		learned[learned_next % LEARNED_RING].req = req;
		learned[learned_next % LEARNED_RING].result = req->ar_result;
		learned_next++;
	}
	forkgate_unlock(&learned_lock);
	return seen;
}

static void learn(struct gaicb *req)
{
	if (!req || !is_name(req->ar_name) || !libc.gai_error || libc.gai_error(req) != 0 ||
	    learned_before(req))
		return;
	for (const struct addrinfo *ai = req->ar_result; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
			names_remember(req->ar_name, AF_INET,
				       &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, NULL, 0);
		else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6))
			names_remember(req->ar_name, AF_INET6,
				       &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, NULL, 0);
	}
	ailive_track(req->ar_name, req->ar_result);
}

/* A SIGEV_THREAD notification: learn the answers, then run the program's function. */
struct gai_notify {
	void (*fn)(union sigval);
	union sigval value;
	int n;
	struct gaicb *list[];
};

static void notify_trampoline(union sigval v)
{
	struct gai_notify *ctx = v.sival_ptr;
	for (int i = 0; i < ctx->n; i++)
		learn(ctx->list[i]);
	void (*fn)(union sigval) = ctx->fn;
	union sigval value = ctx->value;
	free(ctx);
	fn(value);
}

EXPORT int getaddrinfo_a(int mode, struct gaicb *list[], int nitems, struct sigevent *sevp)
{
	libc_ensure();
	if (!libc.getaddrinfo_a)
		return EAI_SYSTEM;
	struct sigevent mine;
	struct gai_notify *ctx = NULL;
	if (mode == GAI_NOWAIT && sevp && sevp->sigev_notify == SIGEV_THREAD && nitems > 0 &&
	    sevp->sigev_notify_function) {
		ctx = malloc(sizeof(*ctx) + (size_t)nitems * sizeof(ctx->list[0]));
		if (ctx) {
			ctx->fn = sevp->sigev_notify_function;
			ctx->value = sevp->sigev_value;
			ctx->n = nitems;
			for (int i = 0; i < nitems; i++)
				ctx->list[i] = list[i];
			mine = *sevp;
			mine.sigev_notify_function = notify_trampoline;
			mine.sigev_value.sival_ptr = ctx;
			sevp = &mine;
		}
	}
	int r = libc.getaddrinfo_a(mode, list, nitems, sevp);
	/* On failure ctx is not freed: requests queued before the failure may still notify. */
	if (mode == GAI_WAIT)
		for (int i = 0; i < nitems; i++)
			learn(list[i]);
	return r;
}

EXPORT int gai_error(struct gaicb *req)
{
	libc_ensure();
	if (!libc.gai_error)
		return EAI_SYSTEM;
	int r = libc.gai_error(req);
	if (r == 0)
		learn(req);
	return r;
}

EXPORT int gai_suspend(const struct gaicb *const list[], int nitems, const struct timespec *timeout)
{
	libc_ensure();
	if (!libc.gai_suspend)
		return EAI_SYSTEM;
	int r = libc.gai_suspend(list, nitems, timeout);
	int e = errno;
	for (int i = 0; i < nitems; i++)
		learn((struct gaicb *)list[i]);
	errno = e;
	return r;
}
