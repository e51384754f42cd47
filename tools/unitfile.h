/* SPDX-License-Identifier: GPL-2.0-or-later */
/* unitfile.h: reading a systemd service the way systemd would, without systemd running: the unit file
 * on the unit search path (or its template), its drop-ins in systemd's order, and the [Service] settings
 * `tlsshim enable` must know about (ExecStart=, Environment=, EnvironmentFile=, RootDirectory=, ...).
 * Used by cmd_enable.c. */
#ifndef TLSSHIM_UNITFILE_H
#define TLSSHIM_UNITFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define UNIT_MAX_EXEC	 16
#define UNIT_MAX_FILES	 64
#define UNIT_DROPIN_NAME "zz-tlsshim.conf"
/* The first line of every drop-in `tlsshim enable` writes; disable and the package's prerm look for it. */
#define UNIT_DROPIN_MARK "# Written by tlsshim enable"

struct unit_exec {
	char path[PATH_MAX]; /* the program, specifiers expanded; may be a bare name (searched on PATH) */
	char where[PATH_MAX + 16]; /* "FILE:LINE" of the ExecStart= line */
};

struct unit_info {
	char name[256];		 /* foo.service or foo@bar.service */
	char template_name[256]; /* foo@.service for an instance, else "" */
	char instance[256];	 /* bar for foo@bar.service */
	char fragment[PATH_MAX]; /* the unit file read (inside root) */
	size_t n_files;		 /* the fragment and the drop-ins, in the order applied */
	char files[UNIT_MAX_FILES][PATH_MAX];
	size_t n_exec;
	struct unit_exec exec[UNIT_MAX_EXEC];
	char ld_preload[4096]; /* the LD_PRELOAD the unit's Environment= sets ("" = none) */
	char ld_preload_where[PATH_MAX + 16];
	char env_files[8][PATH_MAX]; /* EnvironmentFile= paths ("-" prefix removed) */
	size_t n_env_files;
	char root_directory[PATH_MAX], root_image[PATH_MAX];
	char protect_system[32];
	char read_only_paths[1024], inaccessible_paths[1024];
	bool dynamic_user;
	char user[64];
};

/* Finds and reads unit `name` (".service" is added when there is no suffix) under root ("" for /).
 * The search path is SYSTEMD_UNIT_PATH when set (a trailing ':' appends the defaults), else
 * /etc/systemd/system, /run/systemd/system, /usr/local/lib/systemd/system, /usr/lib/systemd/system,
 * /lib/systemd/system. Our own drop-in (UNIT_DROPIN_NAME) is skipped, so enabling twice starts from the
 * unit's own settings. Returns 0, or -1 with a sentence in err. */
int unit_read(const char *root, const char *name, struct unit_info *u, char *err, size_t errlen);

/* Where `tlsshim enable` writes its drop-in for unit u: ROOT/etc/systemd/system/NAME.d/zz-tlsshim.conf. */
void unit_dropin_path(const char *root, const char *name, char *out, size_t len);

/* Normalises a unit name (adds ".service"); returns -1 with err for names systemd would not accept
 * or units that are not services. */
int unit_normalise_name(const char *in, char *out, size_t len, char *err, size_t errlen);

#endif
