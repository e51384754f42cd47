/* namesclient: resolves several host names, then connects to the address of one of them, the way
 * programs do it (for the name-choice tests, tests/integration/test_names.sh).
 *
 * usage: namesclient [-c] [-t] [-s TEXT] -r NAME[,NAME...] -C NAME PORT
 *   -r NAMES  resolve each name in this order (getaddrinfo, AF_INET, SOCK_STREAM); every result is kept
 *             alive until after the connect unless -c
 *   -C NAME   connect to the first address of NAME's result (NAME must be one of -r)
 *   -c        copy that sockaddr into the program's own storage and freeaddrinfo every result first
 *             (as curl, Python and most event loops do)
 *   -t        do the lookups on another thread (as curl's threaded resolver and asyncio do)
 *   -s TEXT   send TEXT after connecting (default "names-probe\n"), then shut down writing and read
 * Prints the received bytes on stdout; status on stderr as "namesclient: STAGE: errno=ENAME (...)".
 * Exit: 0 ok, 1 usage, 2 resolve failed, 3 connect failed, 4 write or read failed. */
#include <pthread.h>

#include "../integration/clientlib.h"

#define MAX_NAMES 8

static char *names[MAX_NAMES];
static struct addrinfo *res[MAX_NAMES];
static int n_names, resolve_rc;

static void *resolve_all(void *arg)
{
	(void)arg;
	for (int i = 0; i < n_names; i++) {
		struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
		int rc = getaddrinfo(names[i], NULL, &hints, &res[i]);
		if (rc != 0) {
			fprintf(stderr, "namesclient: resolve %s: %s\n", names[i], gai_strerror(rc));
			resolve_rc = 2;
			return NULL;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int copy = 0, thread = 0, opt;
	const char *target = NULL, *text = "names-probe\n";
	char *list = NULL;
	while ((opt = getopt(argc, argv, "ctr:C:s:")) != -1) {
		switch (opt) {
		case 'c':
			copy = 1;
			break;
		case 't':
			thread = 1;
			break;
		case 'r':
			list = optarg;
			break;
		case 'C':
			target = optarg;
			break;
		case 's':
			text = optarg;
			break;
		default:
			return 1;
		}
	}
	if (!list || !target || optind + 1 != argc) {
		fprintf(stderr, "usage: namesclient [-c] [-t] [-s TEXT] -r NAME[,NAME...] -C NAME PORT\n");
		return 1;
	}
	int port = atoi(argv[optind]);
	for (char *tok = strtok(list, ","); tok && n_names < MAX_NAMES; tok = strtok(NULL, ","))
		names[n_names++] = tok;
	if (thread) {
		pthread_t t;
		pthread_create(&t, NULL, resolve_all, NULL);
		pthread_join(t, NULL);
	} else {
		resolve_all(NULL);
	}
	if (resolve_rc)
		return resolve_rc;
	int which = -1;
	for (int i = 0; i < n_names; i++)
		if (strcmp(names[i], target) == 0)
			which = i;
	if (which < 0) {
		fprintf(stderr, "namesclient: -C %s is not one of -r\n", target);
		return 1;
	}
	struct sockaddr_in own;
	struct sockaddr *sa = res[which]->ai_addr;
	socklen_t salen = res[which]->ai_addrlen;
	((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port); /* looked up without a service */
	if (copy) {
		memcpy(&own, sa, sizeof(own));
		sa = (struct sockaddr *)&own;
		salen = sizeof(own);
		for (int i = 0; i < n_names; i++) {
			freeaddrinfo(res[i]);
			res[i] = NULL;
		}
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, sa, salen) != 0) {
		int e = errno;
		fprintf(stderr, "namesclient: connect: errno=%s (%s)\n", errno_name(e), strerror(e));
		return 3;
	}
	for (int i = 0; i < n_names; i++)
		if (res[i])
			freeaddrinfo(res[i]);
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len) {
		fprintf(stderr, "namesclient: write: errno=%s\n", errno_name(errno));
		return 4;
	}
	shutdown(fd, SHUT_WR);
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	if (n < 0) {
		fprintf(stderr, "namesclient: read: errno=%s\n", errno_name(errno));
		return 4;
	}
	close(fd);
	return 0;
}
