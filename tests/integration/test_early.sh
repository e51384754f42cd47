#!/usr/bin/env bash
# Hooks that run before the shim's own constructor: another preloaded library's constructor (which glibc
# runs first) resolves a name, connects to a tls destination, writes and reads. The connection must be
# TLS (the policy is loaded on first need), must not crash, and must not recurse.
source "$(dirname "$0")/lib.sh" "${1:-build}"

build_early() {
	cat >"$T/early.c" <<'C'
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
__attribute__((constructor)) static void early(void)
{
	const char *port = getenv("EARLY_PORT");
	if (!port)
		return;
	fprintf(stderr, "early: constructor runs\n");
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_INET}, *res;
	if (getaddrinfo("localhost", port, &hints, &res) != 0)
		return;
	int fd = socket(res->ai_family, res->ai_socktype, 0);
	if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		perror("early: connect");
		return;
	}
	const char req[] = "GET / HTTP/1.0\r\n\r\n";
	if (write(fd, req, sizeof(req) - 1) < 0)
		perror("early: write");
	char buf[64] = {0};
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	fprintf(stderr, "early: read %zd: %.15s\n", n, buf);
	close(fd);
	freeaddrinfo(res);
}
C
	gcc -shared -fPIC -o "$T/libearly.so" "$T/early.c"
}

t_connect_from_an_earlier_constructor() {
	need gcc || return
	build_early || { fail "could not build the test library"; return; }
	start_s_server srv leaf -www || { fail "s_server did not start"; return; }
	# The shim first in LD_PRELOAD: glibc runs libearly's constructor before the shim's.
	PRELOAD="$PRELOAD $T/libearly.so" EARLY_PORT=$PORT TLSSHIM_LOG=debug \
		TLSSHIM_RULES="tls localhost:$PORT ca-file=$ROOT" srun early /bin/true
	local order
	order=$(grep -E '^early: constructor runs|^tlsshim: policy loaded' "$ERR" | head -1)
	[ "$RC" = 0 ] || { fail "the program failed (rc=$RC)"; return; }
	grep -q '^early: read [1-9][0-9]*: HTTP/1.0 200' "$ERR" || { fail "no HTTP answer over TLS: $(grep early: "$ERR" | tr '\n' ' ')"; return; }
	grep -q 'handshake done: TLSv1' "$ERR" || { fail "no TLS handshake logged"; return; }
	case $order in
	"early: constructor runs") ok "the hook ran before the shim's constructor and loaded the policy itself" ;;
	*) fail "the shim's constructor ran first ($order): this case proves nothing on this glibc" ;;
	esac
}

tcase connect_from_an_earlier_constructor
finish
