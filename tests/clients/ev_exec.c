/* ev_exec HOST PORT: a TLS fd does not cross exec (README: close-on-exec, F_SETFD cannot clear it).
 * Server: echo. Connects, exchanges a line, checks F_GETFD shows FD_CLOEXEC, calls F_SETFD 0, checks it is
 * still FD_CLOEXEC; a pipe fd with close-on-exec cleared is the control. Then execs itself as
 *   ev_exec --check TLSFD PIPEFD FAILURES_SO_FAR
 * which checks fcntl(TLSFD, F_GETFD) fails with EBADF and the pipe fd is still open.
 * Prints getfd_initial, setfd0, getfd_after_setfd0, and (from the new image) exec_tls_fd, exec_pipe_fd. */
#include "ev_common.h"

static int check(int tlsfd, int pipefd)
{
	errno = 0;
	int r = fcntl(tlsfd, F_GETFD);
	int e = errno;
	printf("exec_tls_fd=%s\n", r < 0 ? errno_name(e) : "open");
	if (!(r < 0 && e == EBADF))
		ev_fail("after exec, fcntl(%d, F_GETFD) = %d (errno %s): the TLS fd crossed exec", tlsfd, r,
			ev_err(e));
	r = fcntl(pipefd, F_GETFD);
	printf("exec_pipe_fd=%s\n", r < 0 ? errno_name(errno) : "open");
	if (r < 0)
		ev_fail("control: the pipe fd without FD_CLOEXEC did not survive exec");
	return ev_exit_status();
}

int main(int argc, char **argv)
{
	ev_prog = "ev_exec";
	if (argc == 5 && !strcmp(argv[1], "--check")) {
		atomic_store(&ev_failures, atoi(argv[4])); /* what went wrong before the exec */
		return check(atoi(argv[2]), atoi(argv[3]));
	}
	if (argc != 3)
		ev_die("usage: ev_exec HOST PORT");
	int fd = ev_connect(argv[1], argv[2]);
	char in[16];
	ev_write_all(fd, "exec test\n", 10, "exchange");
	ev_read_exact(fd, in, 10, "exchange");
	int fl = fcntl(fd, F_GETFD);
	printf("getfd_initial=%s\n", fl >= 0 && (fl & FD_CLOEXEC) ? "FD_CLOEXEC" : "0");
	if (fl < 0 || !(fl & FD_CLOEXEC))
		ev_fail("F_GETFD on the TLS fd: want FD_CLOEXEC, got %d", fl);
	int r = fcntl(fd, F_SETFD, 0);
	printf("setfd0=%d\n", r);
	fl = fcntl(fd, F_GETFD);
	printf("getfd_after_setfd0=%s\n", fl >= 0 && (fl & FD_CLOEXEC) ? "FD_CLOEXEC" : "0");
	if (fl < 0 || !(fl & FD_CLOEXEC))
		ev_fail("after F_SETFD 0, F_GETFD on the TLS fd: want FD_CLOEXEC still, got %d", fl);
	int p[2];
	if (pipe(p) != 0)
		ev_die("pipe: errno=%s", errno_name(errno));
	fcntl(p[0], F_SETFD, 0);
	char a[16], b[16], f[16];
	snprintf(a, sizeof a, "%d", fd);
	snprintf(b, sizeof b, "%d", p[0]);
	snprintf(f, sizeof f, "%d", atomic_load(&ev_failures));
	fflush(stdout);
	execl("/proc/self/exe", "ev_exec", "--check", a, b, f, (char *)NULL);
	ev_die("execl: errno=%s", errno_name(errno));
}
