/* suidprobe: test_hostile.sh's probe for the setuid rule (README "Security": the configuration is read
 * with secure_getenv, so a setuid program never takes TLSSHIM_* from the environment).
 *
 * usage: suidprobe SHIM PORT TEXT
 * Prints "suidprobe: at_secure=N ruid=N euid=N preloaded=0|1" (preloaded: the shim was already mapped
 * before this program loaded it, i.e. LD_PRELOAD was honoured), then dlopen()s SHIM (absolute path: a
 * setuid program may do that) and connects to 127.0.0.1:PORT through the shim's own exported connect
 * (dlsym), so the shim's policy decides; on success writes TEXT through the shim's write and closes.
 * Prints "suidprobe: connect: ok" or "suidprobe: connect: errno=ENAME".
 * Exit: 0 connected, 2 connect failed, 3 setup failed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <unistd.h>

static int shim_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strstr(line, "libtlsshim"))
			found = 1;
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: suidprobe SHIM PORT TEXT\n");
		return 3;
	}
	printf("suidprobe: at_secure=%lu ruid=%d euid=%d preloaded=%d\n", getauxval(AT_SECURE), (int)getuid(),
	       (int)geteuid(), shim_mapped());
	fflush(stdout);
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		printf("suidprobe: dlopen failed: %s\n", dlerror());
		return 3;
	}
	int (*shim_connect)(int, const struct sockaddr *, socklen_t) =
		(int (*)(int, const struct sockaddr *, socklen_t))dlsym(h, "connect");
	ssize_t (*shim_write)(int, const void *, size_t) = (ssize_t (*)(int, const void *, size_t))dlsym(h, "write");
	int (*shim_close)(int) = (int (*)(int))dlsym(h, "close");
	if (!shim_connect || !shim_write || !shim_close) {
		printf("suidprobe: the shim does not export connect/write/close\n");
		return 3;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (shim_connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		printf("suidprobe: connect: errno=%s\n", strerrorname_np(e) ? strerrorname_np(e) : "E?");
		return 2;
	}
	printf("suidprobe: connect: ok\n");
	fflush(stdout);
	shim_write(fd, argv[3], strlen(argv[3]));
	shim_close(fd);
	return 0;
}
