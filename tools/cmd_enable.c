/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cmd_enable.c: `tlsshim enable [--policy FILE] [--audit] [--root DIR] SERVICE` and
 * `tlsshim disable [--root DIR] SERVICE`. Owns the systemd drop-in ROOT/etc/systemd/system/UNIT.d/
 * zz-tlsshim.conf: what it says (LD_PRELOAD with the unit's own entries kept, TLSSHIM_POLICY, and
 * TLSSHIM_MODE=audit with --audit) and every refusal before it is written: a unit where the preload would
 * be silently ignored (RootDirectory=, RootImage=, a program the loader would not preload into, the
 * library or the policy missing, an EnvironmentFile= that sets LD_PRELOAD). Never talks to systemd and
 * never restarts anything: it prints the command to run. The unit is read by unitfile.c. */
#include "tools/cli.h"
#include "tools/unitfile.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define DEFAULT_POLICY "/etc/tlsshim/policy"

static const char enable_usage[] =
    "usage: tlsshim enable [--policy FILE] [--audit] [--root DIR] SERVICE\n\n"
    "Writes the systemd drop-in /etc/systemd/system/SERVICE.d/" UNIT_DROPIN_NAME " that preloads the\n"
    "tlsshim library into SERVICE with the policy FILE (default " DEFAULT_POLICY "). The unit is read from\n"
    "the unit search path (drop-ins and templates included); no running systemd is needed. Before\n"
    "writing, the ExecStart= programs get the checks of `tlsshim run`; units where the library would be\n"
    "silently ignored (RootDirectory=, RootImage=, static or setuid programs, a missing library) are\n"
    "refused. An LD_PRELOAD the unit sets is kept after the library. Nothing is restarted: the command\n"
    "to run is printed.\n\n"
    "  --policy FILE  the policy the service gets (TLSSHIM_POLICY; an absolute path)\n"
    "  --audit        observe only (TLSSHIM_MODE=audit): log what the service connects to, change nothing\n"
    "  --root DIR     the unit files, the program, the library and the policy are under DIR\n\n"
    "Exit status: 0 written, 1 refused, 2 bad usage.\n";

static const char disable_usage[] =
    "usage: tlsshim disable [--root DIR] SERVICE\n\n"
    "Removes the drop-in `tlsshim enable SERVICE` wrote. Nothing is restarted: the "
    "command to run is printed.\n\n"
    "Exit status: 0 removed, 1 there was none (or it is not ours), 2 bad usage.\n";

/* The program systemd would start for a bare ExecStart= name (systemd 239 and later search a fixed
 * path). Returns 0 with the path inside the unit's filesystem, -1 when it is not there. */
static int exec_path(const char *root, const char *prog, char *out, size_t len)
{
	if (prog[0] == '/') {
		snprintf(out, len, "%s", prog);
		char full[PATH_MAX * 2];
		snprintf(full, sizeof(full), "%s%s", root, prog);
		return access(full, X_OK) == 0 ? 0 : -1;
	}
	static const char *const dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
					   "/usr/bin",	      "/sbin",		"/bin"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char full[PATH_MAX * 2];
		snprintf(out, len, "%s/%s", dirs[i], prog);
		snprintf(full, sizeof(full), "%s%s", root, out);
		if (access(full, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* True when path lies under one of the space-separated paths in list ("-" and "+" prefixes ignored). */
static bool path_under_any(const char *path, const char *list)
{
	char word[PATH_MAX];
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, " ");
		if (n > 0 && n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = '\0';
			const char *w = word;
			while (*w == '-' || *w == '+')
				w++;
			size_t wn = strlen(w);
			while (wn > 1 && w[wn - 1] == '/')
				wn--;
			if (wn > 0 && strncmp(path, w, wn) == 0 &&
			    (path[wn] == '/' || path[wn] == '\0' || wn == 1))
				return true;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* Whether an EnvironmentFile= sets LD_PRELOAD: 1 yes, 0 no, -1 unreadable. */
static int env_file_sets_preload(const char *root, const char *path)
{
	char full[PATH_MAX * 2];
	snprintf(full, sizeof(full), "%s%s", root, path);
	FILE *f = fopen(full, "re");
	if (!f)
		return -1;
	char line[4096];
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		const char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (strncmp(s, "export ", 7) == 0)
			s += 7;
		if (strncmp(s, "LD_PRELOAD=", 11) == 0)
			found = 1;
	}
	fclose(f);
	return found;
}

/* A value for Environment="...": '%' doubled (systemd specifiers), and nothing that needs quoting. */
static int unit_quote(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = in; *p; p++) {
		if (*p == '"' || *p == '\\' || *p == '\n' || (unsigned char)*p < 0x20)
			return -1;
		if (o + 3 >= len)
			return -1;
		if (*p == '%')
			out[o++] = '%';
		out[o++] = *p;
	}
	out[o] = '\0';
	return 0;
}

static int parse_common(int argc, char **argv, bool enable, const char **policy, bool *audit,
			const char **root, const char **unit)
{
	static const struct option opts[] = {{"policy", required_argument, NULL, 'p'},
					     {"audit", no_argument, NULL, 'a'},
					     {"root", required_argument, NULL, 'R'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *cmd = enable ? "enable" : "disable";
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:R:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!enable)
				return cli_usage_error(cmd, "--policy is an option of enable");
			*policy = optarg;
			break;
		case 'a':
			if (!enable)
				return cli_usage_error(cmd, "--audit is an option of enable");
			*audit = true;
			break;
		case 'R':
			*root = optarg;
			break;
		case 'h':
			fputs(enable ? enable_usage : disable_usage, stdout);
			return CLI_OK;
		default:
			return cli_usage_error(cmd, "unknown option or missing value: '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cmd, "give exactly one SERVICE");
	*unit = argv[optind];
	return -1; /* go on */
}

/* The root prefix without a trailing slash ("" for /). */
static void root_prefix(const char *root, char *out, size_t len)
{
	snprintf(out, len, "%s", root ? root : "");
	size_t n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
}

static void restart_hint(const char *name)
{
	if (strstr(name, "@.service"))
		printf("Then run: systemctl daemon-reload && systemctl restart '%.*s@*.service'  (every "
		       "instance)\n",
		       (int)(strlen(name) - strlen("@.service")), name);
	else
		printf("Then run: systemctl daemon-reload && systemctl restart %s\n", name);
}

static int write_dropin(const char *path, const char *text)
{
	char dir[PATH_MAX * 2], tmp[PATH_MAX * 2 + 16];
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	*strrchr(dir, '/') = '\0';
	/* mkdir -p of the drop-in directory (its parents exist on any systemd system) */
	for (char *s = dir + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(dir, 0755);
			*s = '/';
		}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t n = strlen(text);
	bool ok = write(fd, text, n) == (ssize_t)n && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

int cmd_enable(int argc, char **argv)
{
	const char *policy = DEFAULT_POLICY, *root_arg = NULL, *unit = NULL;
	bool audit = false;
	int rc = parse_common(argc, argv, true, &policy, &audit, &root_arg, &unit);
	if (rc >= 0)
		return rc;
	char root[PATH_MAX];
	root_prefix(root_arg, root, sizeof(root));

	struct unit_info *u = calloc(1, sizeof(*u));
	if (!u) {
		cli_error("out of memory");
		return CLI_FAILED;
	}
	char err[PATH_MAX * 4];
	rc = CLI_FAILED;
	if (unit_read(root, unit, u, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsshim enable: refusing: %s\n", err);
		goto out;
	}
	/* Everything that would make the preload silently ignored, so the service would run in plaintext. */
	if (u->root_directory[0] || u->root_image[0]) {
		fprintf(
		    stderr,
		    "tlsshim enable: refusing: %s sets %s=%s: the service runs inside another root, where "
		    "the library and the policy at these paths do not exist, so the preload would be "
		    "ignored and its connections would stay plain. Put the library, the policy and the CA "
		    "files inside that root and set LD_PRELOAD/TLSSHIM_POLICY in the unit yourself\n",
		    u->name, u->root_directory[0] ? "RootDirectory" : "RootImage",
		    u->root_directory[0] ? u->root_directory : u->root_image);
		goto out;
	}
	if (u->n_exec == 0) {
		fprintf(stderr, "tlsshim enable: refusing: %s has no ExecStart= (read %s and %zu drop-ins)\n",
			u->name, u->fragment, u->n_files - 1);
		goto out;
	}
	for (size_t i = 0; i < u->n_exec; i++) {
		char prog[PATH_MAX], why[2048];
		if (exec_path(root, u->exec[i].path, prog, sizeof(prog)) != 0) {
			fprintf(stderr,
				"tlsshim enable: refusing: %s: the program %s is not there (under %s)\n",
				u->exec[i].where, u->exec[i].path, root[0] ? root : "/");
			goto out;
		}
		cli_loader_refusal(root, prog, why, sizeof(why));
		if (why[0]) {
			fprintf(stderr, "tlsshim enable: refusing: %s: %s\n", u->exec[i].where, why);
			goto out;
		}
	}
	char lib[PATH_MAX * 2 + 64], full[PATH_MAX * 3];
	if (cli_find_library(lib, sizeof(lib)) != 0) {
		fprintf(stderr,
			"tlsshim enable: refusing: the tlsshim library is missing (looked for %s); reinstall "
			"tlsshim\n",
			lib);
		goto out;
	}
	if (snprintf(full, sizeof(full), "%s%s", root, lib) >= (int)sizeof(full) ||
	    (root[0] && access(full, R_OK) != 0)) {
		fprintf(stderr, "tlsshim enable: refusing: the library %s is not in %s (%s)\n", lib, root,
			strerror(errno));
		goto out;
	}
	if (strpbrk(lib, ": ")) {
		fprintf(stderr,
			"tlsshim enable: refusing: the library path %s contains ':' or a space, which "
			"LD_PRELOAD cannot express\n",
			lib);
		goto out;
	}
	if (policy[0] != '/') {
		rc = cli_usage_error("enable",
				     "--policy needs an absolute path (the service does not start in "
				     "this directory): %s",
				     policy);
		goto out;
	}
	if (snprintf(full, sizeof(full), "%s%s", root, policy) >= (int)sizeof(full)) {
		fprintf(stderr, "tlsshim enable: refusing: the policy path is too long\n");
		goto out;
	}
	struct cli_policy_src src = {.file = full};
	struct policy pol;
	if (cli_policy_load(&src, &pol) != 0) {
		fprintf(stderr,
			"tlsshim enable: refusing: fix the policy %s first (the service's every TCP connect "
			"would fail with EACCES)\n",
			policy);
		goto out;
	}
	size_t n_rules = pol.n_rules;
	policy_free(&pol);
	struct stat pst;
	bool world_readable = stat(full, &pst) == 0 && (pst.st_mode & S_IROTH);
	for (size_t i = 0; i < u->n_env_files; i++) {
		int sets = env_file_sets_preload(root, u->env_files[i]);
		if (sets == 1) {
			fprintf(
			    stderr,
			    "tlsshim enable: refusing: EnvironmentFile=%s sets LD_PRELOAD, which overrides "
			    "Environment= (so the library would not be loaded); add the library to that file "
			    "instead, or remove LD_PRELOAD from it\n",
			    u->env_files[i]);
			goto out;
		}
	}
	if (path_under_any(policy, u->inaccessible_paths) || path_under_any(lib, u->inaccessible_paths)) {
		fprintf(
		    stderr,
		    "tlsshim enable: refusing: InaccessiblePaths=%s hides the library or the policy from the "
		    "service\n",
		    u->inaccessible_paths);
		goto out;
	}

	/* The drop-in. */
	char *preload = cli_preload_value(lib, u->ld_preload[0] ? u->ld_preload : NULL);
	char q_preload[8192], q_policy[PATH_MAX * 2];
	if (!preload || unit_quote(preload, q_preload, sizeof(q_preload)) != 0 ||
	    unit_quote(policy, q_policy, sizeof(q_policy)) != 0) {
		free(preload);
		fprintf(
		    stderr,
		    "tlsshim enable: refusing: the policy path or the unit's LD_PRELOAD contains a quote, "
		    "a backslash or a control character\n");
		goto out;
	}
	free(preload);
	char text[32768], path[PATH_MAX * 2];
	int tn = snprintf(text, sizeof(text),
			  UNIT_DROPIN_MARK " %s for %s. Remove it with: tlsshim disable %s\n"
					   "# It sorts after every other drop-in, so this LD_PRELOAD (which "
					   "keeps the unit's own entries%s%s)\n"
					   "# is the one the service gets.\n"
					   "[Service]\n"
					   "Environment=\"LD_PRELOAD=%s\" \"TLSSHIM_POLICY=%s\"%s\n",
			  TLSSHIM_VERSION, u->name, u->name, u->ld_preload[0] ? ", from " : "",
			  u->ld_preload[0] ? u->ld_preload_where : "", q_preload, q_policy,
			  audit ? " \"TLSSHIM_MODE=audit\"" : "");
	if (tn < 0 || tn >= (int)sizeof(text)) {
		fprintf(stderr, "tlsshim enable: refusing: the drop-in would be too long\n");
		goto out;
	}
	unit_dropin_path(root, u->name, path, sizeof(path));
	if (write_dropin(path, text) != 0) {
		fprintf(stderr, "tlsshim enable: cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	printf("Wrote %s:\n%s", path, text);

	/* What the operator should know. */
	for (size_t i = 0; i < u->n_env_files; i++)
		fprintf(stderr,
			"tlsshim enable: warning: EnvironmentFile=%s is read when the service starts and "
			"overrides "
			"Environment=: if it ever sets LD_PRELOAD or TLSSHIM_POLICY, the library or this "
			"policy is "
			"replaced%s\n",
			u->env_files[i],
			env_file_sets_preload(root, u->env_files[i]) < 0 ? " (it cannot be read now to check)"
									 : "");
	if (n_rules == 0)
		fprintf(
		    stderr,
		    "tlsshim enable: note: %s has no rule yet: every connection stays plain until you add "
		    "rules (tlsshim check %s)\n",
		    policy, policy);
	if ((u->dynamic_user || (u->user[0] && strcmp(u->user, "root") != 0)) && !world_readable)
		fprintf(
		    stderr,
		    "tlsshim enable: warning: %s runs as %s, and %s is not world-readable: the service "
		    "could not read it and every TCP connect would fail with EACCES. Make the policy and the "
		    "CA files it names readable by that user\n",
		    u->name, u->dynamic_user ? "a dynamic user (DynamicUser=yes)" : u->user, policy);
	if (u->protect_system[0] || u->read_only_paths[0])
		fprintf(
		    stderr,
		    "tlsshim enable: note: ProtectSystem=%s ReadOnlyPaths=%s: read-only is fine (the library "
		    "and the policy are only read); a TLSSHIM_LOG_FILE or TLSSHIM_METRICS_FILE must be in a "
		    "writable place (ReadWritePaths=, or /run/NAME with RuntimeDirectory=)\n",
		    u->protect_system[0] ? u->protect_system : "no", u->read_only_paths);
	restart_hint(u->name);
	rc = CLI_OK;
out:
	free(u);
	return rc;
}

int cmd_disable(int argc, char **argv)
{
	const char *policy = NULL, *root_arg = NULL, *unit = NULL;
	bool audit = false;
	int rc = parse_common(argc, argv, false, &policy, &audit, &root_arg, &unit);
	if (rc >= 0)
		return rc;
	char root[PATH_MAX], name[256], err[512], path[PATH_MAX * 2];
	root_prefix(root_arg, root, sizeof(root));
	if (unit_normalise_name(unit, name, sizeof(name), err, sizeof(err)) != 0)
		return cli_usage_error("disable", "%s", err);
	unit_dropin_path(root, name, path, sizeof(path));
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "tlsshim disable: %s is not enabled: %s: %s\n", name, path, strerror(errno));
		return CLI_FAILED;
	}
	char first[256] = "";
	if (!fgets(first, sizeof(first), f))
		first[0] = '\0';
	fclose(f);
	if (strncmp(first, UNIT_DROPIN_MARK, strlen(UNIT_DROPIN_MARK)) != 0) {
		fprintf(stderr, "tlsshim disable: %s was not written by tlsshim enable; leaving it alone\n",
			path);
		return CLI_FAILED;
	}
	if (unlink(path) != 0) {
		fprintf(stderr, "tlsshim disable: cannot remove %s: %s\n", path, strerror(errno));
		return CLI_FAILED;
	}
	*strrchr(path, '/') = '\0';
	rmdir(path); /* only when empty: other drop-ins stay */
	printf("Removed %s/%s: %s no longer gets the tlsshim library%s.\n", path, UNIT_DROPIN_NAME, name,
	       " after a restart (its connections will be plain then)");
	restart_hint(name);
	return CLI_OK;
}
