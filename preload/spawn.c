/* spawn.c: posix_spawn and posix_spawnp, and the posix_spawn_file_actions_* calls that describe what the
 * child does with its fds. glibc runs those actions in the child with internal calls no hook sees, and
 * adddup2(fd, fd) clears close-on-exec, so a TLS fd named in them would reach the new program, which
 * cannot continue the session and would write plaintext into it. The shim keeps its own copy of each
 * action list (a shadow, keyed by the file-actions object; glibc's private list is never read) and
 * decides at spawn time: an action that would put a TLS fd into the child makes posix_spawn return EBADF
 * with one reason line, and nothing is spawned. */
#include "preload/hooks.h"
#include "preload/forkgate.h"
#include "preload/log.h"

#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>

enum spawn_op { SPAWN_DUP2, SPAWN_CLOSE, SPAWN_OPEN, SPAWN_CLOSEFROM };

struct spawn_action {
	enum spawn_op op;
	int fd;	   /* dup2: the source; closefrom: the first fd; else the fd the action replaces */
	int newfd; /* dup2 only */
};

struct spawn_shadow {
	const posix_spawn_file_actions_t *fa;
	struct spawn_shadow *next;
	struct spawn_action *acts;
	size_t n, cap;
	bool broken; /* an action could not be recorded (out of memory): spawning with it is refused */
};

/* Every live shadow. Written by the file-action hooks, read at spawn time; guarded by shadow_lock, which
 * is taken inside the fork gate (forkgate.h) and held only for list and array updates (never across a
 * system call), so a child never inherits it locked. */
static struct spawn_shadow *shadows;
static pthread_mutex_t shadow_lock = PTHREAD_MUTEX_INITIALIZER;

/* The shadow of fa; lock held. */
static struct spawn_shadow *shadow_find(const posix_spawn_file_actions_t *fa)
{
	for (struct spawn_shadow *s = shadows; s; s = s->next)
		if (s->fa == fa)
			return s;
	return NULL;
}

/* Appends one action to fa's shadow (after the real call succeeded). A failure to record marks the
 * shadow broken: posix_spawn will refuse it rather than guess. */
static void shadow_add(const posix_spawn_file_actions_t *fa, enum spawn_op op, int fd, int newfd)
{
	forkgate_lock(&shadow_lock);
	struct spawn_shadow *s = shadow_find(fa);
	if (s && s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct spawn_action *a = realloc(s->acts, cap * sizeof(*a));
		if (a) {
			s->acts = a;
			s->cap = cap;
		} else {
			s->broken = true;
		}
	}
	if (s && s->n < s->cap)
		s->acts[s->n++] = (struct spawn_action){.op = op, .fd = fd, .newfd = newfd};
	forkgate_unlock(&shadow_lock);
}

EXPORT int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
	libc_ensure();
	struct spawn_shadow *fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return ENOMEM; /* an action list the shim could not follow must not exist */
	int r = libc.posix_spawn_file_actions_init(fa);
	if (r != 0) {
		free(fresh);
		return r;
	}
	fresh->fa = fa;
	forkgate_lock(&shadow_lock);
	struct spawn_shadow *stale = shadow_find(fa); /* re-initialised without destroy: start over */
	if (stale) {
		stale->n = 0;
		stale->broken = false;
	} else {
		fresh->next = shadows;
		shadows = fresh;
		fresh = NULL;
	}
	forkgate_unlock(&shadow_lock);
	free(fresh);
	return 0;
}

EXPORT int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
	libc_ensure();
	struct spawn_shadow *gone = NULL;
	forkgate_lock(&shadow_lock);
	for (struct spawn_shadow **p = &shadows; *p; p = &(*p)->next) {
		if ((*p)->fa == fa) {
			gone = *p;
			*p = gone->next;
			break;
		}
	}
	forkgate_unlock(&shadow_lock);
	if (gone) {
		free(gone->acts);
		free(gone);
	}
	return libc.posix_spawn_file_actions_destroy(fa);
}

EXPORT int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int newfd)
{
	libc_ensure();
	int r = libc.posix_spawn_file_actions_adddup2(fa, fd, newfd);
	if (r == 0)
		shadow_add(fa, SPAWN_DUP2, fd, newfd);
	return r;
}

EXPORT int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t *fa, int fd)
{
	libc_ensure();
	int r = libc.posix_spawn_file_actions_addclose(fa, fd);
	if (r == 0)
		shadow_add(fa, SPAWN_CLOSE, fd, -1);
	return r;
}

EXPORT int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *restrict fa, int fd,
					    const char *restrict path, int oflag, mode_t mode)
{
	libc_ensure();
	int r = libc.posix_spawn_file_actions_addopen(fa, fd, path, oflag, mode);
	if (r == 0)
		shadow_add(fa, SPAWN_OPEN, fd, -1);
	return r;
}

EXPORT int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *fa, int from)
{
	libc_ensure();
	if (!libc.posix_spawn_file_actions_addclosefrom_np)
		return ENOSYS;
	int r = libc.posix_spawn_file_actions_addclosefrom_np(fa, from);
	if (r == 0)
		shadow_add(fa, SPAWN_CLOSEFROM, from, -1);
	return r;
}

/* Directory changes move no fd: passed through (fchdir on a socket fails in the child by itself). */
EXPORT int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *restrict fa,
						const char *restrict path)
{
	libc_ensure();
	if (!libc.posix_spawn_file_actions_addchdir_np)
		return ENOSYS;
	return libc.posix_spawn_file_actions_addchdir_np(fa, path);
}

EXPORT int posix_spawn_file_actions_addfchdir_np(posix_spawn_file_actions_t *fa, int fd)
{
	libc_ensure();
	if (!libc.posix_spawn_file_actions_addfchdir_np)
		return ENOSYS;
	return libc.posix_spawn_file_actions_addfchdir_np(fa, fd);
}

/* Whether fd is a TLS fd of this process (an inherited socket is classified first). */
static bool parent_fd_is_tls(int fd)
{
	if (!fdtab_load(fd))
		return false;
	struct conn *c = conn_get(fd);
	if (!c)
		return false;
	conn_put(c);
	return true;
}

/* Whether, when action i runs in the child, fd still refers to what the parent has on that number: no
 * earlier action replaced or closed it. (An earlier dup2 onto it copied a non-TLS fd, or the spawn
 * would have been refused there.) */
static bool child_fd_unchanged(const struct spawn_action *acts, size_t i, int fd)
{
	for (size_t j = 0; j < i; j++) {
		const struct spawn_action *a = &acts[j];
		if ((a->op == SPAWN_CLOSE || a->op == SPAWN_OPEN) && a->fd == fd)
			return false;
		if (a->op == SPAWN_DUP2 && a->newfd == fd && a->fd != fd)
			return false;
		if (a->op == SPAWN_CLOSEFROM && fd >= a->fd)
			return false;
	}
	return true;
}

/* 0 when the actions keep every TLS fd out of the child, else EBADF with the reason printed. */
static int spawn_check(const char *what, const char *path, const posix_spawn_file_actions_t *fa)
{
	if (!fa || fdtab_next(0, FDTAB_MAX_FD - 1) < 0)
		return 0; /* no actions, or no TLS fd at all: every TLS fd is close-on-exec */
	forkgate_lock(&shadow_lock);
	struct spawn_shadow *s = shadow_find(fa);
	size_t n = s ? s->n : 0;
	bool broken = !s || s->broken;
	struct spawn_action *acts = n ? malloc(n * sizeof(*acts)) : NULL;
	if (acts)
		for (size_t i = 0; i < n; i++)
			acts[i] = s->acts[i];
	forkgate_unlock(&shadow_lock);
	if (broken || (n && !acts)) {
		free(acts);
		log_msg(
		    LOG_ERROR,
		    "%s(%s) refused with EBADF: its file actions were not all seen by the shim (initialised "
		    "before it, copied, or out of memory) and this process has TLS fds; build them with "
		    "posix_spawn_file_actions_init",
		    what, path);
		return EBADF;
	}
	int err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		const struct spawn_action *a = &acts[i];
		if (a->op != SPAWN_DUP2 || !child_fd_unchanged(acts, i, a->fd) || !parent_fd_is_tls(a->fd))
			continue;
		log_msg(
		    LOG_ERROR,
		    "%s(%s) refused with EBADF: file action adddup2(%d, %d) would hand TLS fd %d to the new "
		    "program (%s), which cannot continue the session and would write plaintext into it; "
		    "pass it a plain fd",
		    what, path, a->fd, a->newfd, a->fd,
		    a->fd == a->newfd ? "dup2 onto itself clears close-on-exec"
				      : "the copy is not close-on-exec");
		err = EBADF;
	}
	free(acts);
	return err;
}

EXPORT int posix_spawn(pid_t *restrict pid, const char *restrict path, const posix_spawn_file_actions_t *fa,
		       const posix_spawnattr_t *restrict attr, char *const argv[restrict],
		       char *const envp[restrict])
{
	libc_ensure();
	int err = spawn_check("posix_spawn", path, fa);
	if (err)
		return err;
	return libc.posix_spawn(pid, path, fa, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *restrict pid, const char *restrict file, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *restrict attr, char *const argv[restrict],
			char *const envp[restrict])
{
	libc_ensure();
	int err = spawn_check("posix_spawnp", file, fa);
	if (err)
		return err;
	return libc.posix_spawnp(pid, file, fa, attr, argv, envp);
}
