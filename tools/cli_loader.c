/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cli_loader.c: what `tlsshim run` and `tlsshim enable` check before handing a program the library:
 * whether the dynamic loader would preload into it at all (static, setuid/setgid, file capabilities,
 * another ELF class or machine, followed through "#!" interpreters), and the LD_PRELOAD value that puts
 * the library in front of the program's own entries. */
#include "tools/cli.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define MAX_SCRIPT_DEPTH 4

/* The ELF machine this build of the library (and the command beside it) is for. */
#if defined(__x86_64__)
#define CLI_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define CLI_ELF_MACHINE EM_AARCH64
#elif defined(__i386__)
#define CLI_ELF_MACHINE EM_386
#elif defined(__arm__)
#define CLI_ELF_MACHINE EM_ARM
#elif defined(__powerpc64__)
#define CLI_ELF_MACHINE EM_PPC64
#elif defined(__s390x__)
#define CLI_ELF_MACHINE EM_S390
#elif defined(__riscv)
#define CLI_ELF_MACHINE EM_RISCV
#else
#error "unknown machine: add its EM_ value"
#endif

static void loader_refusal(const char *root, const char *path, int depth, char *why, size_t len)
{
	why[0] = '\0';
	char full[PATH_MAX * 2];
	if (snprintf(full, sizeof(full), "%s%s", root, path) >= (int)sizeof(full))
		return;
	struct stat st;
	if (stat(full, &st) != 0)
		return; /* execv will report it */
	if (st.st_mode & (S_ISUID | S_ISGID)) {
		snprintf(
		    why, len,
		    "%s is %s (mode %04o): the dynamic loader ignores LD_PRELOAD for setuid and setgid "
		    "programs "
		    "(secure-execution mode), so the shim would silently not load and its connections would "
		    "stay plain. Run a copy without the bit (e.g. cp %s /tmp/ and run that) if it works "
		    "unprivileged, or put a TLS proxy such as stunnel in front of its connections",
		    path, (st.st_mode & S_ISUID) ? "setuid" : "setgid", (unsigned)(st.st_mode & 07777), path);
		return;
	}
	if (getxattr(full, "security.capability", NULL, 0) > 0) {
		snprintf(
		    why, len,
		    "%s has file capabilities (see getcap): the dynamic loader ignores LD_PRELOAD for it "
		    "(secure-execution mode), so the shim would silently not load. Run a copy without "
		    "capabilities, or put a TLS proxy such as stunnel in front of its connections",
		    path);
		return;
	}
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	unsigned char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
		close(fd);
		if (depth >= MAX_SCRIPT_DEPTH)
			return;
		size_t i = 2, e;
		while (i < (size_t)n && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		for (e = i; e < (size_t)n && buf[e] != ' ' && buf[e] != '\t' && buf[e] != '\n'; e++)
			;
		char interp[PATH_MAX];
		if (e == i || e - i >= sizeof(interp))
			return;
		memcpy(interp, buf + i, e - i);
		interp[e - i] = '\0';
		char inner[1024];
		loader_refusal(root, interp, depth + 1, inner, sizeof(inner));
		if (inner[0])
			if (snprintf(why, len, "%s is a script run by %s, and %s", path, interp, inner) < 0)
				why[0] = '\0';
		return;
	}
	if (n < (ssize_t)EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG) != 0) {
		close(fd);
		return; /* not ELF: binfmt_misc or execv will decide */
	}
	bool has_interp = false;
	if (buf[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		if (n < (ssize_t)sizeof(eh)) {
			close(fd);
			return;
		}
		memcpy(&eh, buf, sizeof(eh));
		if (eh.e_machine != CLI_ELF_MACHINE) {
			close(fd);
			snprintf(
			    why, len,
			    "%s is built for another machine (ELF machine %u, the library is for %u): the "
			    "loader would skip the library with a warning and the connections would stay "
			    "plain. Use a build of the program for this machine",
			    path, (unsigned)eh.e_machine, (unsigned)CLI_ELF_MACHINE);
			return;
		}
		for (unsigned i = 0; i < eh.e_phnum && i < 4096; i++) {
			Elf64_Phdr ph;
			if (eh.e_phentsize < sizeof(ph) ||
			    pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
				sizeof(ph))
				break;
			if (ph.p_type == PT_INTERP)
				has_interp = true;
		}
	} else {
		close(fd);
		snprintf(
		    why, len,
		    "%s is a %s program: the 64-bit tlsshim library cannot load into it (the loader would "
		    "skip it with a warning and the connections would stay plain). Use a 64-bit build of "
		    "the program",
		    path, buf[EI_CLASS] == ELFCLASS32 ? "32-bit" : "non-64-bit");
		return;
	}
	close(fd);
	if (!has_interp)
		snprintf(
		    why, len,
		    "%s is statically linked: it has no dynamic loader, so LD_PRELOAD cannot load the shim "
		    "into it and its connections would silently stay plain. Use a dynamically linked build "
		    "of "
		    "the program, or put a TLS proxy such as stunnel in front of its connections",
		    path);
}

void cli_loader_refusal(const char *root, const char *path, char *why, size_t len)
{
	loader_refusal(root ? root : "", path, 0, why, len);
}

int cli_find_program(const char *prog, char *out, size_t len)
{
	if (strchr(prog, '/')) {
		snprintf(out, len, "%s", prog);
		return access(out, F_OK) == 0 ? 0 : -1;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		struct stat st;
		if (n == 0)
			snprintf(out, len, "./%s", prog);
		else
			snprintf(out, len, "%.*s/%s", (int)n, p, prog);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		if (!end)
			break;
		p = end;
	}
	return -1;
}

/* Sanitizer runtimes must stay first in LD_PRELOAD. */
static bool is_sanitizer_runtime(const char *item, size_t n)
{
	const char *base = item;
	for (size_t i = 0; i < n; i++)
		if (item[i] == '/')
			base = item + i + 1;
	size_t bn = n - (size_t)(base - item);
	return (bn >= 7 && strncmp(base, "libasan", 7) == 0) ||
	       (bn >= 15 && strncmp(base, "libclang_rt.asan", 15) == 0) ||
	       (bn >= 7 && strncmp(base, "libtsan", 7) == 0) ||
	       (bn >= 8 && strncmp(base, "libubsan", 8) == 0);
}

char *cli_preload_value(const char *lib, const char *old)
{
	size_t cap = strlen(lib) + (old ? strlen(old) : 0) + 4;
	char *front = calloc(1, cap), *back = calloc(1, cap), *out = calloc(1, cap);
	if (!front || !back || !out) {
		free(front);
		free(back);
		free(out);
		return NULL;
	}
	for (const char *p = old; p && *p;) {
		size_t n = strcspn(p, ": ");
		if (n > 0) {
			char *dst = is_sanitizer_runtime(p, n) ? front : back;
			bool ours = n >= 13 && strncmp(p + n - 13, "libtlsshim.so", 13) == 0;
			if (!ours) {
				if (*dst)
					strcat(dst, ":");
				strncat(dst, p, n);
			}
		}
		p += n;
		if (*p)
			p++;
	}
	snprintf(out, cap, "%s%s%s%s%s", front, *front ? ":" : "", lib, *back ? ":" : "", back);
	free(front);
	free(back);
	return out;
}
