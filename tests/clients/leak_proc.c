/* leak_proc MODE PORT SENTINEL: the process and fd-number routes around the shim (issue 11, items 1, 2, 7).
 * Server: echo on 127.0.0.1:PORT (behind the recording relay). Connects (TLS under the shim), sends
 * "hello\n", then takes the route MODE, which tries to get SENTINEL into the socket some way the hooks
 * might miss; then the parent sends "after:" SENTINEL "\n" itself, through TLS, and reads back the echo of
 * everything it sent, so the session must still work. Prints key=value lines ("route_errno=EBADF" is what
 * the route's refused call gave); "leak_proc: FAIL: ..." on stderr for every broken expectation.
 * A route that the shim fails to close sends SENTINEL without the "after:" prefix in clear: the test's
 * recording shows it.
 * Modes (the child's route, and what is expected):
 *   vfork_close        vfork(); close(fd); exec true                 the parent's session survives
 *   vfork_close_range  vfork(); close_range(3, ~0U, 0); exec true    the same
 *   vfork_dup2         vfork(); dup2(fd, 1); exec sh printf          dup2 fails with EBADF
 *   vfork_fionclex     vfork(); ioctl(fd, FIONCLEX); exec sh >&fd    EBADF
 *   vfork_setfd0       vfork(); fcntl(fd, F_SETFD, 0); exec sh >&fd  EBADF
 *   vfork_write        vfork(); write(fd, SENTINEL)                  EBADF
 *   vfork_fionread     vfork(); ioctl(fd, FIONREAD)                  EBADF (the count is the parent's session's)
 *   clone_vm           clone(CLONE_VM); write(fd, SENTINEL); close   EBADF, the close leaves the session
 *   fork_nohandlers    _Fork(); write(fd, SENTINEL); close           EBADF
 *   sysfork            syscall(SYS_fork); write(fd, SENTINEL)        EBADF
 *   fionclex           ioctl(fd, FIONCLEX) in the parent (0), fd stays FD_CLOEXEC; fork+exec sh >&fd fails
 *   spawn_dup2         posix_spawn with adddup2(fd, 1), sh printf    posix_spawn returns EBADF
 *   spawn_dup2_self    posix_spawn with adddup2(fd, fd), sh >&fd     EBADF
 *   spawn_dup2_chain   adddup2(fd, 9) then adddup2(9, 1)             EBADF
 *   spawn_closed_ok    addclose(fd), adddup2(pipe, 1): sh printf ok  spawns; the pipe gets "spawned"
 *   scm_rights         sendmsg(SCM_RIGHTS, fd) on a socketpair       EBADF; nothing passed
 *   unshare            close_range(fd, fd, CLOSE_RANGE_UNSHARE)      EINVAL; the session survives
 *   dup_race           thread A: dup2(fd, 9), close(9) in a loop; meanwhile fork+exec of a shell
 *                      (without the shim) writing to fd 9 (bounded): no shell ever gets the copy
 * (close-on-exec from birth) */
#include "ev_common.h"

#include <sched.h>
#include <spawn.h>
#include <sys/syscall.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

extern pid_t _Fork(void);
extern char **environ;

static int tls_fd;
static const char *sentinel;

static void report(const char *key, int r, int e)
{
	printf("%s=%s\n", key, r < 0 ? errno_name(e) : "ok");
}

static void expect_errno(const char *what, int r, int e, int want)
{
	report("route_errno", r, e);
	if (r >= 0 || e != want)
		ev_fail("%s: want -1 %s, got %d (errno %s)", what, errno_name(want), r,
			ev_err(r < 0 ? e : 0));
}

/* The child's result travels through a pipe: _Fork and fork children have memory of their own. */
static int res_pipe[2];

static void child_says(int r, int e)
{
	int v[2] = {r, e};
	if (syscall(SYS_write, res_pipe[1], v, sizeof v) < 0)
		_exit(3);
}

static void parent_hears(const char *what, pid_t pid, int want)
{
	int v[2] = {0, 0};
	ssize_t n = read(res_pipe[0], v, sizeof v);
	int st = 0;
	if (pid > 0)
		waitpid(pid, &st, __WALL);
	if (n != (ssize_t)sizeof v) {
		ev_fail("%s: the child reported nothing (read %zd)", what, n);
		return;
	}
	expect_errno(what, v[0], v[1], want);
}

static char sh_cmd[256];

/* An exec'd shell that writes SENTINEL into `fd` (or stdout for fd 1). */
static void exec_sh_writing_to(int fd)
{
	if (fd == 1)
		snprintf(sh_cmd, sizeof sh_cmd, "printf %%s '%s'", sentinel);
	else
		snprintf(sh_cmd, sizeof sh_cmd, "printf %%s '%s' >&%d", sentinel, fd);
	execl("/bin/sh", "sh", "-c", sh_cmd, (char *)NULL);
	_exit(127);
}

static int clone_child(void *arg)
{
	(void)arg;
	errno = 0;
	int r = (int)write(tls_fd, sentinel, strlen(sentinel));
	child_says(r, errno);
	close(tls_fd);
	_exit(0);
}

static void route_vfork(const char *mode)
{
	volatile int r = 0, e = 0;
	pid_t pid = vfork();
	if (pid < 0)
		ev_die("vfork: errno=%s", errno_name(errno));
	if (pid == 0) {
		if (!strcmp(mode, "vfork_close")) {
			close(tls_fd);
			execl("/bin/true", "true", (char *)NULL);
		} else if (!strcmp(mode, "vfork_close_range")) {
			close_range(3, ~0U, 0);
			execl("/bin/true", "true", (char *)NULL);
		} else if (!strcmp(mode, "vfork_dup2")) {
			r = dup2(tls_fd, 1);
			e = errno;
			if (r >= 0)
				exec_sh_writing_to(1);
		} else if (!strcmp(mode, "vfork_fionclex")) {
			r = ioctl(tls_fd, FIONCLEX);
			e = errno;
			if (r >= 0)
				exec_sh_writing_to(tls_fd);
		} else if (!strcmp(mode, "vfork_setfd0")) {
			r = fcntl(tls_fd, F_SETFD, 0);
			e = errno;
			if (r >= 0)
				exec_sh_writing_to(tls_fd);
		} else if (!strcmp(mode, "vfork_write")) {
			r = (int)write(tls_fd, sentinel, strlen(sentinel));
			e = errno;
		} else if (!strcmp(mode, "vfork_fionread")) {
			int n = 0;
			r = ioctl(tls_fd, FIONREAD, &n);
			e = errno;
		}
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (!strcmp(mode, "vfork_close") || !strcmp(mode, "vfork_close_range")) {
		printf("child_exit=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			ev_fail("the child did not exec true: status %d", st);
		report("route_errno", 0, 0);
		return;
	}
	expect_errno(mode, r, e, EBADF); /* the vfork child wrote r and e into our memory */
}

static void route_spawn(const char *mode)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	int p[2] = {-1, -1};
	char *argv[] = {"sh", "-c", sh_cmd, NULL};
	snprintf(sh_cmd, sizeof sh_cmd, "printf %%s '%s'", sentinel);
	if (!strcmp(mode, "spawn_dup2")) {
		posix_spawn_file_actions_adddup2(&fa, tls_fd, 1);
	} else if (!strcmp(mode, "spawn_dup2_self")) {
		posix_spawn_file_actions_adddup2(&fa, tls_fd, tls_fd);
		snprintf(sh_cmd, sizeof sh_cmd, "printf %%s '%s' >&%d", sentinel, tls_fd);
	} else if (!strcmp(mode, "spawn_dup2_chain")) {
		posix_spawn_file_actions_adddup2(&fa, tls_fd, 9);
		posix_spawn_file_actions_adddup2(&fa, 9, 1);
	} else { /* spawn_closed_ok */
		if (pipe(p) != 0)
			ev_die("pipe: errno=%s", errno_name(errno));
		posix_spawn_file_actions_addclose(&fa, tls_fd);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		snprintf(sh_cmd, sizeof sh_cmd, "printf spawned");
	}
	pid_t pid = -1;
	int rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc == 0) {
		int st;
		waitpid(pid, &st, 0);
	}
	if (strcmp(mode, "spawn_closed_ok") != 0) {
		expect_errno(mode, rc ? -1 : 0, rc, EBADF);
		return;
	}
	report("route_errno", rc ? -1 : 0, rc);
	close(p[1]);
	char buf[32] = "";
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	printf("spawned_output=%s\n", buf);
	if (rc != 0 || strcmp(buf, "spawned") != 0)
		ev_fail("control: posix_spawn with harmless actions: rc %s, output '%s'", ev_err(rc), buf);
	close(p[0]);
}

static void route_scm_rights(void)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0)
		ev_die("socketpair: errno=%s", errno_name(errno));
	char byte = 'x';
	struct iovec iov = {&byte, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &tls_fd, sizeof(int));
	errno = 0;
	int r = (int)sendmsg(sp[0], &m, 0);
	expect_errno("sendmsg(SCM_RIGHTS, a TLS fd)", r, errno, EBADF);
	if (r >= 0) { /* the leak: whoever receives it writes without the shim, as another program would */
		char rb;
		struct iovec riov = {&rb, 1};
		struct msghdr rm = {
		    .msg_iov = &riov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
		if (recvmsg(sp[1], &rm, 0) > 0 && CMSG_FIRSTHDR(&rm)) {
			int got;
			memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&rm)), sizeof(int));
			if (syscall(SYS_write, got, sentinel, strlen(sentinel)) < 0)
				ev_fail("the passed fd could not even be written");
		}
	}
	close(sp[0]);
	close(sp[1]);
}

static atomic_int race_stop;
static int race_target = 9; /* dash redirects single-digit fds only */

/* Thread A: makes and closes copies of the TLS fd on race_target, as fast as it can. */
static void *race_copier(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000000 && !atomic_load(&race_stop); i++) {
		if (dup2(tls_fd, race_target) < 0)
			ev_fail("dup2(tls, %d): errno=%s", race_target, errno_name(errno));
		close(race_target);
	}
	return NULL;
}

/* While thread A copies, the main thread forks and execs a shell that writes SENTINEL into the copy's
 * number: a copy that is not close-on-exec from birth reaches the shell, which writes in clear. */
static void route_dup_race(void)
{
	pthread_t t;
	/* An fd the harness left on that number (a lock file, say) would let the shell write before the
	 * first copy lands there: only the copies may ever occupy it. */
	close(race_target);
	pthread_create(&t, NULL, race_copier, NULL);
	long long end = now_ms() + 3000;
	int spawned = 0, wrote = 0;
	while (now_ms() < end && spawned < 300) {
		pid_t pid = fork();
		if (pid < 0)
			ev_die("fork: errno=%s", errno_name(errno));
		if (pid == 0) {
			unsetenv(
			    "LD_PRELOAD"); /* a program without the shim, which would not refuse the fd */
			exec_sh_writing_to(race_target);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		spawned++;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			wrote++;
	}
	atomic_store(&race_stop, 1);
	pthread_join(t, NULL);
	printf("race_execs=%d race_shell_wrote=%d\n", spawned, wrote);
	if (wrote)
		ev_fail("%d exec'd shells inherited a copy of the TLS fd (without close-on-exec)", wrote);
	report("route_errno", 0, 0);
}

int main(int argc, char **argv)
{
	ev_prog = "leak_proc";
	if (argc != 4)
		ev_die("usage: leak_proc MODE PORT SENTINEL");
	const char *mode = argv[1];
	sentinel = argv[3];
	tls_fd = ev_connect("127.0.0.1", argv[2]);
	ev_write_all(tls_fd, "hello\n", 6, "first write");
	if (pipe(res_pipe) != 0)
		ev_die("pipe: errno=%s", errno_name(errno));
	if (!strncmp(mode, "vfork_", 6)) {
		route_vfork(mode);
	} else if (!strcmp(mode, "clone_vm")) {
		static char stack[256 * 1024] __attribute__((aligned(16)));
		pid_t pid = clone(clone_child, stack + sizeof stack, CLONE_VM | SIGCHLD, NULL);
		if (pid < 0)
			ev_die("clone: errno=%s", errno_name(errno));
		parent_hears(mode, pid, EBADF);
	} else if (!strcmp(mode, "fork_nohandlers") || !strcmp(mode, "sysfork")) {
		pid_t pid = !strcmp(mode, "sysfork") ? (pid_t)syscall(SYS_fork) : _Fork();
		if (pid < 0)
			ev_die("%s: errno=%s", mode, errno_name(errno));
		if (pid == 0) {
			errno = 0;
			int r = (int)write(tls_fd, sentinel, strlen(sentinel));
			child_says(r, errno);
			close(tls_fd);
			_exit(0);
		}
		parent_hears(mode, pid, EBADF);
	} else if (!strcmp(mode, "fionclex")) {
		int r = ioctl(tls_fd, FIONCLEX);
		report("fionclex", r, errno);
		int fl = fcntl(tls_fd, F_GETFD);
		printf("getfd_after=%s\n", fl >= 0 && (fl & FD_CLOEXEC) ? "FD_CLOEXEC" : "0");
		if (r != 0 || fl < 0 || !(fl & FD_CLOEXEC))
			ev_fail("ioctl(FIONCLEX) on a TLS fd: want 0 and FD_CLOEXEC kept, got %d and %d", r,
				fl);
		pid_t pid = fork();
		if (pid == 0)
			exec_sh_writing_to(tls_fd);
		int st = 0;
		waitpid(pid, &st, 0);
		printf("exec_sh_status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ev_fail("the exec'd shell could write to the TLS fd number");
		report("route_errno", -1, EBADF);
	} else if (!strncmp(mode, "spawn_", 6)) {
		route_spawn(mode);
	} else if (!strcmp(mode, "scm_rights")) {
		route_scm_rights();
	} else if (!strcmp(mode, "unshare")) {
		errno = 0;
		int r = close_range((unsigned)tls_fd, (unsigned)tls_fd, CLOSE_RANGE_UNSHARE);
		expect_errno("close_range(CLOSE_RANGE_UNSHARE) over a TLS fd", r, errno, EINVAL);
	} else if (!strcmp(mode, "dup_race")) {
		route_dup_race();
	} else {
		ev_die("unknown mode %s", mode);
	}
	/* The parent's own bytes, through TLS, and the echo of all of it. */
	char tail[300];
	int tl = snprintf(tail, sizeof tail, "after:%s\n", sentinel);
	ev_write_all(tls_fd, tail, (size_t)tl, "the parent's write after the route");
	char want[320], got[320];
	int wl = snprintf(want, sizeof want, "hello\n%s", tail);
	ev_read_exact(tls_fd, got, (size_t)wl, "the echo");
	printf("parent_after=%s\n", memcmp(got, want, (size_t)wl) ? "mismatch" : "ok");
	if (memcmp(got, want, (size_t)wl))
		ev_fail("the echo differs from what the parent sent");
	close(tls_fd);
	return ev_exit_status();
}
