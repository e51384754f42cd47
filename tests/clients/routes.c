/* routes: tries one way of getting bytes into a connected socket that avoids the ordinary write/send
 * calls, for tests/integration/test_leak_routes.sh. It knows nothing about TLS.
 *
 * usage: routes ROUTE HOST PORT SENTINEL
 *   connects to HOST:PORT (a numeric address), sends "start\n" with write(), tries ROUTE with SENTINEL,
 *   sends "end\n" with write(), half-closes and reads the echo until EOF.
 * Reports on stderr: "routes: ROUTE: rc=N errno=ENAME" for the attempt (extra "routes: ..." lines for
 * details) and "routes: echo=<what came back>" at the end (newlines shown as |).
 * Exit: 0 done (whatever the route did), 2 connect failed, 3 setup failed. */
#include <aio.h>
#include <dlfcn.h>
#include <netdb.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "../integration/clientlib.h"

/* The GLIBC_2.2.5 compat versions (librt's, before glibc 2.34 moved them into libc): a program built on
 * an older system binds to these. */
extern int old_aio_write(struct aiocb *);
__asm__(".symver old_aio_write,aio_write@GLIBC_2.2.5");
extern int old_lio_listio(int, struct aiocb *const[], int, struct sigevent *);
__asm__(".symver old_lio_listio,lio_listio@GLIBC_2.2.5");

extern ssize_t __write(int, const void *, size_t);
extern ssize_t __send(int, const void *, size_t, int);

static int connect_to(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)atoi(port));
		len = sizeof(*in);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)atoi(port));
		len = sizeof(*in6);
	} else {
		return -2;
	}
	int s = socket(ss.ss_family, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	if (connect(s, (struct sockaddr *)&ss, len) != 0) {
		int e = errno;
		close(s);
		errno = e;
		return -1;
	}
	return s;
}

static void report(const char *route, long rc, int e)
{
	fprintf(stderr, "routes: %s: rc=%ld errno=%s\n", route, rc, rc < 0 ? errno_name(e) : "none");
}

static long wait_aio(struct aiocb *cb)
{
	const struct aiocb *list[1] = {cb};
	for (int i = 0; i < 100 && aio_error(cb) == EINPROGRESS; i++)
		aio_suspend(list, 1, &(struct timespec){0, 50000000});
	int e = aio_error(cb);
	long r = aio_return(cb);
	fprintf(stderr, "routes: aio completed: error=%s return=%ld\n", e ? errno_name(e) : "0", r);
	return r;
}

static void fill_cb(struct aiocb *cb, int fd, const char *buf, int op)
{
	memset(cb, 0, sizeof(*cb));
	cb->aio_fildes = fd;
	cb->aio_buf = (void *)buf;
	cb->aio_nbytes = strlen(buf);
	cb->aio_lio_opcode = op;
}

/* lio_listio with one write to a scratch file (must complete) and one to the socket. */
static void try_lio(int s, const char *msg, bool old)
{
	char path[] = "/tmp/tlsshim-routes-lio.XXXXXX";
	int f = mkstemp(path);
	if (f < 0) {
		perror("routes: mkstemp");
		exit(3);
	}
	unlink(path);
	static const char filedata[] = "file-bytes";
	struct aiocb a, b;
	fill_cb(&a, f, filedata, LIO_WRITE);
	fill_cb(&b, s, msg, LIO_WRITE);
	struct aiocb *list[2] = {&a, &b};
	int r = old ? old_lio_listio(LIO_WAIT, list, 2, NULL) : lio_listio(LIO_WAIT, list, 2, NULL);
	int e = errno;
	report(old ? "lio_listio_compat" : "lio_listio", r, e);
	fprintf(stderr, "routes: file aiocb: error=%s return=%ld\n",
		aio_error(&a) ? errno_name(aio_error(&a)) : "0", (long)aio_return(&a));
	fprintf(stderr, "routes: socket aiocb: error=%s\n", aio_error(&b) ? errno_name(aio_error(&b)) : "0");
	struct stat st;
	fstat(f, &st);
	fprintf(stderr, "routes: file size=%lld\n", (long long)st.st_size);
	close(f);
}

static void try_io_submit(int s, const char *msg)
{
	aio_context_t ctx = 0;
	if (syscall(SYS_io_setup, 4, &ctx) != 0) {
		report("syscall_io_submit", -1, errno);
		fprintf(stderr, "routes: io_setup failed\n");
		return;
	}
	struct iocb cb;
	memset(&cb, 0, sizeof(cb));
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_fildes = (unsigned)s;
	cb.aio_buf = (uint64_t)(uintptr_t)msg;
	cb.aio_nbytes = strlen(msg);
	struct iocb *list[1] = {&cb};
	long r = syscall(SYS_io_submit, ctx, 1, list);
	report("syscall_io_submit", r, errno);
	if (r == 1) {
		struct io_event ev;
		struct timespec ts = {5, 0};
		long n = syscall(SYS_io_getevents, ctx, 1, 1, &ev, &ts);
		fprintf(stderr, "routes: io_getevents=%ld res=%lld\n", n, (long long)ev.res);
	}
	syscall(SYS_io_destroy, ctx);
}

static void try_pidfd_getfd(const char *host, const char *port)
{
	int pipefd[2];
	if (pipe(pipefd) != 0)
		exit(3);
	pid_t child = fork();
	if (child == 0) { /* connects (TLS under the shim), says which fd, and waits */
		close(pipefd[0]);
		int cs = connect_to(host, port);
		if (write(pipefd[1], &cs, sizeof(cs)) != sizeof(cs))
			_exit(1);
		sleep(10);
		_exit(0);
	}
	close(pipefd[1]);
	int childfd = -1;
	if (read(pipefd[0], &childfd, sizeof(childfd)) != sizeof(childfd) || childfd < 0) {
		fprintf(stderr, "routes: the child could not connect\n");
		exit(2);
	}
	int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	int fd = pidfd_getfd(pidfd, childfd, 0);
	int e = errno;
	report("pidfd_getfd", fd, e);
	if (fd >= 0) {
		ssize_t w = write(fd, getenv("ROUTES_SENTINEL"), strlen(getenv("ROUTES_SENTINEL")));
		fprintf(stderr, "routes: write on the copied fd: %zd\n", w);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

/* One way of writing msg into socket s. Returns the route's result (also reported). */
static void try_route(const char *route, int *sp, const char *msg, const char *host, const char *port)
{
	int s = *sp;
	size_t len = strlen(msg);
	long r;
	struct aiocb cb;
	if (strcmp(route, "aio_write") == 0 || strcmp(route, "aio_write_compat") == 0 ||
	    strcmp(route, "aio_write64") == 0) {
		fill_cb(&cb, s, msg, LIO_WRITE);
		if (strcmp(route, "aio_write") == 0)
			r = aio_write(&cb);
		else if (strcmp(route, "aio_write64") == 0)
			r = aio_write64((struct aiocb64 *)&cb);
		else
			r = old_aio_write(&cb);
		report(route, r, errno);
		if (r == 0)
			wait_aio(&cb);
	} else if (strcmp(route, "aio_read") == 0) {
		static char rbuf[64];
		memset(&cb, 0, sizeof(cb));
		cb.aio_fildes = s;
		cb.aio_buf = rbuf;
		cb.aio_nbytes = sizeof(rbuf);
		r = aio_read(&cb);
		report(route, r, errno);
		if (r == 0)
			wait_aio(&cb);
	} else if (strcmp(route, "aio_fsync") == 0) {
		fill_cb(&cb, s, msg, 0);
		r = aio_fsync(O_SYNC, &cb);
		report(route, r, errno);
	} else if (strcmp(route, "lio_listio") == 0) {
		try_lio(s, msg, false);
	} else if (strcmp(route, "lio_listio_compat") == 0) {
		try_lio(s, msg, true);
	} else if (strcmp(route, "syscall_write") == 0) {
		r = syscall(SYS_write, s, msg, len);
		report(route, r, errno);
	} else if (strcmp(route, "syscall_sendto") == 0) {
		r = syscall(SYS_sendto, s, msg, len, 0, NULL, 0);
		report(route, r, errno);
	} else if (strcmp(route, "syscall_writev") == 0) {
		struct iovec iov[2] = {{(void *)msg, len / 2}, {(void *)(msg + len / 2), len - len / 2}};
		r = syscall(SYS_writev, s, iov, 2);
		report(route, r, errno);
	} else if (strcmp(route, "syscall_dup_write") == 0) {
		int d = (int)syscall(SYS_dup, s);
		r = d < 0 ? -1 : write(d, msg, len);
		report(route, r, errno);
	} else if (strcmp(route, "syscall_io_submit") == 0) {
		try_io_submit(s, msg);
	} else if (strcmp(route, "syscall_io_uring_setup") == 0) {
		char params[120];
		memset(params, 0, sizeof(params));
		r = syscall(SYS_io_uring_setup, 4, params);
		report(route, r, errno);
		if (r >= 0)
			close((int)r);
	} else if (strcmp(route, "alias_write") == 0) {
		r = __write(s, msg, len);
		report(route, r, errno);
	} else if (strcmp(route, "alias_send") == 0) {
		r = __send(s, msg, len, 0);
		report(route, r, errno);
	} else if (strcmp(route, "alias_write_nocancel") == 0) {
		ssize_t (*fn)(int, const void *, size_t) =
		    (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_DEFAULT, "__write_nocancel");
		r = fn ? fn(s, msg, len) : -1;
		report(route, r, fn ? errno : ENOSYS);
	} else if (strcmp(route, "fileno") == 0) {
		FILE *f = fdopen(dup(s), "r+");
		r = f ? fileno(f) : -1;
		fprintf(stderr, "routes: fileno_unlocked=%d\n", f ? fileno_unlocked(f) : -1);
		report(route, r, errno);
		/* isatty and fstat through the number, as programs do */
		struct stat st;
		fprintf(stderr, "routes: fstat_socket=%d\n",
			r >= 0 && fstat((int)r, &st) == 0 && S_ISSOCK(st.st_mode));
	} else if (strcmp(route, "pwrite") == 0) {
		r = pwrite(s, msg, len, 0);
		report(route, r, errno);
	} else if (strcmp(route, "pwritev") == 0) {
		struct iovec iov = {(void *)msg, len};
		r = pwritev(s, &iov, 1, 0);
		report(route, r, errno);
	} else if (strcmp(route, "vmsplice") == 0) {
		struct iovec iov = {(void *)msg, len};
		r = vmsplice(s, &iov, 1, 0);
		report(route, r, errno);
	} else if (strcmp(route, "copy_file_range") == 0) {
		char path[] = "/tmp/tlsshim-routes-cfr.XXXXXX";
		int f = mkstemp(path);
		unlink(path);
		if (f < 0 || write(f, msg, len) != (ssize_t)len)
			exit(3);
		off_t off = 0;
		r = copy_file_range(f, &off, s, NULL, len, 0);
		report(route, r, errno);
	} else if (strcmp(route, "io_file_attach") == 0) {
		FILE *f = fopen("/dev/null", "w");
		FILE *(*attach)(FILE *, int) =
		    (FILE * (*)(FILE *, int)) dlsym(RTLD_DEFAULT, "_IO_file_attach");
		FILE *got = attach ? attach(f, s) : NULL;
		int e = errno;
		if (got) {
			fprintf(got, "%s", msg);
			fflush(got);
		}
		report(route, got ? 0 : -1, e);
	} else if (strcmp(route, "pidfd_getfd") == 0) {
		try_pidfd_getfd(host, port);
	} else {
		fprintf(stderr, "routes: unknown route %s\n", route);
		exit(1);
	}
}

/* getaddrinfo_a, waiting (GAI_WAIT) or not (GAI_NOWAIT + gai_suspend + gai_error), then a connect to
 * the first IPv4 answer: HOST is a name here. */
static int gai_route(const char *route, const char *host, const char *port, int *sp)
{
	int mode;
	if (strcmp(route, "gai_wait") == 0)
		mode = GAI_WAIT;
	else if (strcmp(route, "gai_nowait") == 0)
		mode = GAI_NOWAIT;
	else
		return 0;
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct gaicb req = {.ar_name = host, .ar_service = port, .ar_request = &hints};
	struct gaicb *list[1] = {&req};
	int r = getaddrinfo_a(mode, list, 1, NULL);
	if (r == 0 && mode == GAI_NOWAIT) {
		const struct gaicb *wait[1] = {&req};
		for (int i = 0; i < 100 && gai_error(&req) == EAI_INPROGRESS; i++)
			gai_suspend(wait, 1, &(struct timespec){0, 100000000});
		r = gai_error(&req);
	}
	if (r != 0 || !req.ar_result) {
		fprintf(stderr, "routes: %s: resolving %s failed: %s\n", route, host, gai_strerror(r));
		exit(2);
	}
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(s, req.ar_result->ai_addr, req.ar_result->ai_addrlen) != 0) {
		fprintf(stderr, "routes: connect: errno=%s\n", errno_name(errno));
		exit(2);
	}
	if (mode == GAI_NOWAIT) {
		/* A program may free the answer and still ask about the request (it stays done): the shim
		 * must not read the freed list again (AddressSanitizer, make asan, would say so). */
		freeaddrinfo(req.ar_result);
		if (gai_error(&req) != 0)
			exit(2);
	}
	*sp = s;
	if (write(s, "start\n", 6) != 6)
		exit(2);
	const char *msg = getenv("ROUTES_SENTINEL");
	r = (int)write(s, msg, strlen(msg));
	report(route, r, errno);
	return 1;
}

/* The stdio routes need the FILE to exist before the connect. */
static int stdio_route(const char *route, const char *host, const char *port, const char *msg, int *sp)
{
	if (strcmp(route, "stdio_fdopen_before_connect") == 0) {
		/* fdopen on the socket, then connect (TLS), then fprintf: the FILE predates the TLS. */
		struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
		inet_pton(AF_INET, host, &in.sin_addr);
		int s = socket(AF_INET, SOCK_STREAM, 0);
		FILE *f = fdopen(s, "w");
		if (!f || connect(s, (struct sockaddr *)&in, sizeof(in)) != 0) {
			fprintf(stderr, "routes: connect: errno=%s\n", errno_name(errno));
			exit(2);
		}
		*sp = s;
		if (write(s, "start\n", 6) != 6)
			exit(2);
		int r = fprintf(f, "%s", msg);
		errno = 0;
		int fl = fflush(f);
		report(route, fl == 0 ? r : -1, errno);
		return 1;
	}
	if (strcmp(route, "stdio_stdout_kept") == 0 || strcmp(route, "stdio_socket_on_fd1") == 0) {
		/* A FILE kept for fd 1 (as C++'s std::cout keeps the original stdout), then a TLS socket
		 * lands on fd 1: by dup2 after connect, or by taking the number (fd 1 closed, socket,
		 * connect). */
		FILE *kept = stdout;
		setvbuf(kept, NULL, _IOFBF, 4096);
		fprintf(kept, "buffered-before-%s",
			msg); /* sits in the buffer, never flushed to the terminal */
		int s;
		if (strcmp(route, "stdio_stdout_kept") == 0) {
			s = connect_to(host, port);
			if (s < 0) {
				fprintf(stderr, "routes: connect: errno=%s\n", errno_name(errno));
				exit(2);
			}
			if (dup2(s, 1) != 1)
				exit(3);
		} else {
			close(1);
			s = connect_to(host, port);
			if (s != 1) {
				fprintf(stderr, "routes: socket is fd %d, not 1 (errno=%s)\n", s,
					errno_name(errno));
				exit(2);
			}
		}
		*sp = s;
		if (write(s, "start\n", 6) != 6)
			exit(2);
		int r = fprintf(kept, "%s", msg);
		errno = 0;
		int fl = fflush(kept);
		report(route, fl == 0 ? r : -1, errno);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: routes ROUTE HOST PORT SENTINEL\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	const char *route = argv[1], *host = argv[2], *port = argv[3], *msg = argv[4];
	setenv("ROUTES_SENTINEL", msg, 1);
	int s = -1;
	if (!stdio_route(route, host, port, msg, &s) && !gai_route(route, host, port, &s)) {
		s = connect_to(host, port);
		if (s < 0) {
			fprintf(stderr, "routes: connect: errno=%s\n", errno_name(errno));
			return 2;
		}
		if (write(s, "start\n", 6) != 6) {
			fprintf(stderr, "routes: write start: errno=%s\n", errno_name(errno));
			return 2;
		}
		try_route(route, &s, msg, host, port);
	}
	if (write(s, "end\n", 4) != 4)
		fprintf(stderr, "routes: write end: errno=%s\n", errno_name(errno));
	shutdown(s, SHUT_WR);
	char buf[4096];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(s, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0 || (got += (size_t)n) >= sizeof(buf) - 1)
			break;
	}
	buf[got] = '\0';
	for (size_t i = 0; i < got; i++)
		if (buf[i] == '\n')
			buf[i] = '|';
	fprintf(stderr, "routes: echo=%s\n", buf);
	return 0;
}
