/* ev_sendfile64 HOST PORT FILE: sendfile() of FILE into a TLS socket, compiled with _FILE_OFFSET_BITS=64 so
 * glibc's header turns the call into sendfile64 (the test checks the binary imports sendfile64). Server:
 * a hash server; after shutdown(SHUT_WR) its "<sha256> <n>" line is printed as reply=... */
#define _FILE_OFFSET_BITS 64
#include "ev_common.h"

#include <sys/sendfile.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	ev_prog = "ev_sendfile64";
	if (argc != 4)
		ev_die("usage: ev_sendfile64 HOST PORT FILE");
	int fd = ev_connect(argv[1], argv[2]);
	int f = open(argv[3], O_RDONLY);
	if (f < 0)
		ev_die("open %s: errno=%s", argv[3], errno_name(errno));
	struct stat st;
	fstat(f, &st);
	off_t off = 0;
	int calls = 0;
	while (off < st.st_size && calls++ < 100000) {
		ssize_t n = sendfile(fd, f, &off, (size_t)(st.st_size - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ev_die("sendfile64 at %lld: %zd errno=%s", (long long)off, n,
			       n < 0 ? errno_name(errno) : "-");
	}
	printf("sendfile64_calls=%d offset=%lld sizeof_off_t=%zu\n", calls, (long long)off, sizeof(off_t));
	if (shutdown(fd, SHUT_WR) != 0)
		ev_fail("shutdown: errno=%s", errno_name(errno));
	char reply[200] = "";
	ssize_t n = read(fd, reply, sizeof reply - 1);
	if (n > 0) {
		reply[n] = 0;
		reply[strcspn(reply, "\n")] = 0;
	}
	printf("reply=%s\n", reply);
	close(f);
	close(fd);
	return ev_exit_status();
}
