/* SPDX-License-Identifier: GPL-2.0-or-later */
/* unitfile.c: see unitfile.h. systemd's own rules, as far as `tlsshim enable` needs them (systemd.unit(5),
 * systemd.service(5), systemd.exec(5)): the first directory on the search path that holds the unit wins;
 * an instance foo@bar.service falls back to the template foo@.service; drop-ins NAME.d/NAME.conf (and the
 * template's, and service.d/ for every service) are applied after the unit file in the lexical order of
 * their file names, a file name in an earlier directory hiding the same name in a later one; a line
 * ending in a backslash continues; an empty assignment resets a list setting. */
#include "tools/unitfile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define UNIT_FILE_MAX (1 << 20)

/* Copies src into dst (len bytes); false (dst cut, still terminated) when it does not fit. */
static bool copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);
	if (n >= len) {
		memcpy(dst, src, len - 1);
		dst[len - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

static const char *const default_path[] = {"/etc/systemd/system", "/run/systemd/system",
					   "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
					   "/lib/systemd/system"};
#define N_DEFAULT_PATH (sizeof(default_path) / sizeof(default_path[0]))
#define MAX_PATH_DIRS  32

struct search_path {
	size_t n;
	char dir[MAX_PATH_DIRS][PATH_MAX];
};

static void path_add(struct search_path *sp, const char *d, size_t n)
{
	if (sp->n < MAX_PATH_DIRS && n > 0 && n < PATH_MAX) {
		memcpy(sp->dir[sp->n], d, n);
		sp->dir[sp->n][n] = '\0';
		sp->n++;
	}
}

static void search_path_get(struct search_path *sp)
{
	sp->n = 0;
	const char *env = getenv("SYSTEMD_UNIT_PATH");
	if (!env || !*env) {
		for (size_t i = 0; i < N_DEFAULT_PATH; i++)
			path_add(sp, default_path[i], strlen(default_path[i]));
		return;
	}
	const char *p = env;
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		path_add(sp, p, n);
		if (!colon)
			break;
		p = colon + 1;
		if (!*p) { /* a trailing ':' appends the defaults */
			for (size_t i = 0; i < N_DEFAULT_PATH; i++)
				path_add(sp, default_path[i], strlen(default_path[i]));
			break;
		}
	}
}

int unit_normalise_name(const char *in, char *out, size_t len, char *err, size_t errlen)
{
	size_t n = strlen(in);
	if (n == 0 || n > 200 || strchr(in, '/')) {
		snprintf(err, errlen, "'%s' is not a unit name (give a name such as nginx or nginx.service)",
			 in);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)in[i]) && !strchr(":-_.\\@", in[i])) {
			snprintf(err, errlen, "'%s' is not a unit name (character '%c')", in, in[i]);
			return -1;
		}
	static const char *const others[] = {".socket", ".target", ".timer", ".mount",	".automount",
					     ".path",	".slice",  ".scope", ".device", ".swap"};
	const char *dot = strrchr(in, '.');
	for (size_t i = 0; dot && i < sizeof(others) / sizeof(others[0]); i++)
		if (strcmp(dot, others[i]) == 0) {
			snprintf(err, errlen,
				 "%s is not a service: only .service units run programs with ExecStart=", in);
			return -1;
		}
	snprintf(out, len, "%s%s", in, dot && strcmp(dot, ".service") == 0 ? "" : ".service");
	return 0;
}

void unit_dropin_path(const char *root, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/etc/systemd/system/%s.d/%s", root, name, UNIT_DROPIN_NAME);
}

/* root + dir + "/" + file exists as something systemd would load. 1 found (resolved path in out), 0 not
 * there, -1 masked (a symlink to /dev/null) or unreadable, with err. */
static int find_in_dir(const char *root, const char *dir, const char *file, char *out, size_t len, char *err,
		       size_t errlen)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s%s/%s", root, dir, file);
	struct stat st;
	if (lstat(p, &st) != 0)
		return 0;
	for (int hops = 0; S_ISLNK(st.st_mode) && hops < 8; hops++) {
		char target[PATH_MAX];
		ssize_t n = readlink(p, target, sizeof(target) - 1);
		if (n <= 0)
			return 0;
		target[n] = '\0';
		if (strcmp(target, "/dev/null") == 0) {
			snprintf(err, errlen, "%s is masked (%s%s/%s links to /dev/null)", file, root, dir,
				 file);
			return -1;
		}
		char next[PATH_MAX * 2];
		if (target[0] == '/')
			snprintf(next, sizeof(next), "%s%s", root, target);
		else {
			char *slash = strrchr(p, '/');
			snprintf(next, sizeof(next), "%.*s/%s", (int)(slash - p), p, target);
		}
		copy_str(p, sizeof(p), next);
		if (lstat(p, &st) != 0)
			return 0;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	if (!copy_str(out, len, p))
		return 0;
	return 1;
}

/* ---- settings ---- */

/* Copies the next word of a command line or an Environment= list into out (quotes removed, backslash
 * escapes kept as the character). Returns a pointer after it, or NULL at the end. */
static const char *next_word(const char *s, char *out, size_t len)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	if (!*s)
		return NULL;
	size_t o = 0;
	char quote = 0;
	for (; *s; s++) {
		if (quote) {
			if (*s == quote) {
				quote = 0;
				continue;
			}
		} else if (*s == '"' || *s == '\'') {
			quote = *s;
			continue;
		} else if (isspace((unsigned char)*s)) {
			break;
		}
		if (*s == '\\' && s[1])
			s++;
		if (o + 1 < len)
			out[o++] = *s;
	}
	out[o] = '\0';
	return s;
}

/* systemd's unescaping of an instance or prefix (%I, %P): "\xNN" is a byte, '-' is '/'. */
static void unescape_unit(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; in[i] && o + 1 < len; i++) {
		if (in[i] == '\\' && in[i + 1] == 'x' && isxdigit((unsigned char)in[i + 2]) &&
		    isxdigit((unsigned char)in[i + 3])) {
			char hex[3] = {in[i + 2], in[i + 3], 0};
			out[o++] = (char)strtol(hex, NULL, 16);
			i += 3;
		} else {
			out[o++] = in[i] == '-' ? '/' : in[i];
		}
	}
	out[o] = '\0';
}

/* Expands the specifiers a program path may use; -1 with err for any other. */
static int expand_specifiers(const struct unit_info *u, const char *in, char *out, size_t len, char *err,
			     size_t errlen)
{
	char prefix[256], tmp[256];
	snprintf(prefix, sizeof(prefix), "%.*s", (int)strcspn(u->name, "@."), u->name);
	size_t o = 0;
	for (size_t i = 0; in[i]; i++) {
		const char *add = NULL;
		char one[2] = {in[i], 0};
		if (in[i] != '%') {
			add = one;
		} else {
			switch (in[++i]) {
			case '%':
				add = "%";
				break;
			case 'i':
				add = u->instance;
				break;
			case 'I':
				unescape_unit(u->instance, tmp, sizeof(tmp));
				add = tmp;
				break;
			case 'n':
				add = u->name;
				break;
			case 'N':
				snprintf(tmp, sizeof(tmp), "%.*s",
					 (int)(strlen(u->name) - strlen(".service")), u->name);
				add = tmp;
				break;
			case 'p':
				add = prefix;
				break;
			case 'P':
				unescape_unit(prefix, tmp, sizeof(tmp));
				add = tmp;
				break;
			default:
				snprintf(err, errlen,
					 "the program path '%.200s' uses the specifier %%%c, which tlsshim "
					 "enable does "
					 "not expand, so it cannot check the program",
					 in, in[i] ? in[i] : ' ');
				return -1;
			}
		}
		size_t n = strlen(add);
		if (o + n + 1 > len) {
			snprintf(err, errlen, "the program path '%.200s' is too long", in);
			return -1;
		}
		memcpy(out + o, add, n);
		o += n;
		if (!in[i])
			break;
	}
	out[o] = '\0';
	return 0;
}

static bool is_true(const char *v)
{
	return strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "on") == 0;
}

static void append_list(char *list, size_t len, const char *v)
{
	if (!*v) {
		list[0] = '\0';
		return;
	}
	size_t n = strlen(list);
	snprintf(list + n, len - n, "%s%s", n ? " " : "", v);
}

/* One "Key=Value" of the [Service] section. */
static int apply_setting(struct unit_info *u, const char *key, const char *value, const char *where,
			 char *err, size_t errlen)
{
	if (strcmp(key, "ExecStart") == 0) {
		if (!*value) {
			u->n_exec = 0;
			return 0;
		}
		const char *v = value;
		while (*v && strchr("-@:+!", *v))
			v++;
		char word[PATH_MAX];
		if (!next_word(v, word, sizeof(word))) {
			snprintf(err, errlen, "%s: ExecStart= names no program", where);
			return -1;
		}
		if (u->n_exec >= UNIT_MAX_EXEC) {
			snprintf(err, errlen, "%s: more than %d ExecStart= lines", where, UNIT_MAX_EXEC);
			return -1;
		}
		struct unit_exec *e = &u->exec[u->n_exec];
		char why[600];
		if (expand_specifiers(u, word, e->path, sizeof(e->path), why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: %s", where, why);
			return -1;
		}
		snprintf(e->where, sizeof(e->where), "%s", where);
		u->n_exec++;
	} else if (strcmp(key, "Environment") == 0) {
		if (!*value) {
			u->ld_preload[0] = '\0';
			return 0;
		}
		char word[4200];
		for (const char *p = next_word(value, word, sizeof(word)); p;
		     p = next_word(p, word, sizeof(word)))
			if (strncmp(word, "LD_PRELOAD=", 11) == 0) {
				copy_str(u->ld_preload, sizeof(u->ld_preload), word + 11);
				snprintf(u->ld_preload_where, sizeof(u->ld_preload_where), "%s", where);
			}
	} else if (strcmp(key, "EnvironmentFile") == 0) {
		if (!*value)
			u->n_env_files = 0;
		else if (u->n_env_files < 8)
			snprintf(u->env_files[u->n_env_files++], PATH_MAX, "%s", value + (value[0] == '-'));
	} else if (strcmp(key, "RootDirectory") == 0) {
		snprintf(u->root_directory, sizeof(u->root_directory), "%s", value);
	} else if (strcmp(key, "RootImage") == 0) {
		snprintf(u->root_image, sizeof(u->root_image), "%s", value);
	} else if (strcmp(key, "ProtectSystem") == 0) {
		snprintf(u->protect_system, sizeof(u->protect_system), "%s", value);
	} else if (strcmp(key, "ReadOnlyPaths") == 0) {
		append_list(u->read_only_paths, sizeof(u->read_only_paths), value);
	} else if (strcmp(key, "InaccessiblePaths") == 0) {
		append_list(u->inaccessible_paths, sizeof(u->inaccessible_paths), value);
	} else if (strcmp(key, "DynamicUser") == 0) {
		u->dynamic_user = is_true(value);
	} else if (strcmp(key, "User") == 0) {
		snprintf(u->user, sizeof(u->user), "%s", value);
	}
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_file(struct unit_info *u, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	char *text = malloc(UNIT_FILE_MAX + 1);
	if (!text) {
		fclose(f);
		snprintf(err, errlen, "out of memory reading %s", path);
		return -1;
	}
	size_t n = fread(text, 1, UNIT_FILE_MAX + 1, f);
	fclose(f);
	if (n > UNIT_FILE_MAX) {
		free(text);
		snprintf(err, errlen, "%s is larger than 1 MiB", path);
		return -1;
	}
	text[n] = '\0';
	bool in_service = false;
	int rc = 0;
	unsigned lineno = 0, first = 1;
	char *line = malloc(n + 1);
	if (!line) {
		free(text);
		snprintf(err, errlen, "out of memory reading %s", path);
		return -1;
	}
	size_t ll = 0;
	for (size_t i = 0; i <= n && rc == 0; i++) {
		if (i < n && text[i] != '\n') {
			line[ll++] = text[i];
			continue;
		}
		lineno++;
		if (i < n && ll > 0 && line[ll - 1] == '\\') { /* a trailing backslash joins the next line */
			line[ll - 1] = ' ';
			continue;
		}
		line[ll] = '\0';
		ll = 0;
		char *t = trim(line);
		if (*t == '[') {
			in_service = strcmp(t, "[Service]") == 0;
		} else if (in_service && *t && *t != '#' && *t != ';') {
			char *eq = strchr(t, '=');
			if (eq) {
				*eq = '\0';
				char where[PATH_MAX + 16];
				snprintf(where, sizeof(where), "%s:%u", path, first);
				rc = apply_setting(u, trim(t), trim(eq + 1), where, err, errlen);
			}
		}
		first = lineno + 1;
	}
	free(line);
	free(text);
	return rc;
}

/* ---- drop-ins ---- */

struct dropin {
	char base[256];
	char path[PATH_MAX];
};

static int cmp_dropin(const void *a, const void *b)
{
	return strcmp(((const struct dropin *)a)->base, ((const struct dropin *)b)->base);
}

static void collect_dropins(const char *root, const char *dir, const char *dname, struct dropin *list,
			    size_t *n)
{
	char d[PATH_MAX * 2];
	snprintf(d, sizeof(d), "%s%s/%s", root, dir, dname);
	DIR *dh = opendir(d);
	if (!dh)
		return;
	struct dirent *e;
	while ((e = readdir(dh)) != NULL && *n < UNIT_MAX_FILES - 1) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0 ||
		    strcmp(e->d_name, UNIT_DROPIN_NAME) == 0)
			continue;
		bool seen = false;
		for (size_t i = 0; i < *n; i++)
			seen = seen || strcmp(list[i].base, e->d_name) == 0;
		if (seen) /* the same name in an earlier directory wins */
			continue;
		char p[PATH_MAX * 2 + 300];
		snprintf(p, sizeof(p), "%s/%s", d, e->d_name);
		struct stat st;
		if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
			continue; /* a drop-in linked to /dev/null is a masked drop-in */
		snprintf(list[*n].base, sizeof(list[*n].base), "%s", e->d_name);
		if (!copy_str(list[*n].path, sizeof(list[*n].path), p))
			continue;
		(*n)++;
	}
	closedir(dh);
}

int unit_read(const char *root, const char *name, struct unit_info *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (unit_normalise_name(name, u->name, sizeof(u->name), err, errlen) != 0)
		return -1;
	const char *at = strchr(u->name, '@');
	if (at && at[1] != '.') { /* an instance: foo@bar.service -> template foo@.service, instance bar */
		snprintf(u->template_name, sizeof(u->template_name), "%.*s@.service", (int)(at - u->name),
			 u->name);
		snprintf(u->instance, sizeof(u->instance), "%.*s", (int)(strlen(at + 1) - strlen(".service")),
			 at + 1);
	}
	struct search_path sp;
	search_path_get(&sp);
	int found = 0;
	for (size_t i = 0; i < sp.n && !found; i++) {
		found = find_in_dir(root, sp.dir[i], u->name, u->fragment, sizeof(u->fragment), err, errlen);
		if (found == 0 && u->template_name[0])
			found = find_in_dir(root, sp.dir[i], u->template_name, u->fragment,
					    sizeof(u->fragment), err, errlen);
		if (found < 0)
			return -1;
	}
	if (!found) {
		size_t o = (size_t)snprintf(err, errlen, "no unit file for %s%s%s on the unit search path (",
					    u->name, u->template_name[0] ? " or " : "", u->template_name);
		for (size_t i = 0; i < sp.n && o < errlen; i++)
			o += (size_t)snprintf(err + o, errlen - o, "%s%s%s", i ? ", " : "", root, sp.dir[i]);
		if (o < errlen)
			snprintf(err + o, errlen - o, ")");
		return -1;
	}
	struct dropin *drop = calloc(UNIT_MAX_FILES, sizeof(*drop));
	if (!drop) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t nd = 0;
	char dname[300];
	for (size_t i = 0; i < sp.n; i++) {
		snprintf(dname, sizeof(dname), "%s.d", u->name);
		collect_dropins(root, sp.dir[i], dname, drop, &nd);
		if (u->template_name[0]) {
			snprintf(dname, sizeof(dname), "%s.d", u->template_name);
			collect_dropins(root, sp.dir[i], dname, drop, &nd);
		}
		collect_dropins(root, sp.dir[i], "service.d", drop, &nd);
	}
	qsort(drop, nd, sizeof(*drop), cmp_dropin);
	snprintf(u->files[0], PATH_MAX, "%s", u->fragment);
	u->n_files = 1;
	int rc = parse_file(u, u->fragment, err, errlen);
	for (size_t i = 0; i < nd && rc == 0; i++) {
		snprintf(u->files[u->n_files++], PATH_MAX, "%s", drop[i].path);
		rc = parse_file(u, drop[i].path, err, errlen);
	}
	free(drop);
	return rc;
}
