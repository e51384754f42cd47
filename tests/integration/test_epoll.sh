#!/usr/bin/env bash
# Issue 12, epoll: the per-set design (preload/epoll.c). One C client (tests/clients/ev_epoll.c) mode
# per flag and situation: level and edge triggered, EPOLLONESHOT (also with two threads on one set),
# EPOLLEXCLUSIVE (two threads, two sets; the kernel's EINVAL rules compared with a plain socket),
# EPOLLRDHUP/EPOLLPRI, one fd in several sets, the same data value (0) for every fd, a registered fd
# closed and its number reused, fork with an inherited set, and a socket registered before its
# non-blocking connect (nginx's upstream pattern). tests/clients/ev_epx.c adds the corners: sets made and
# waited on with syscall(SYS_epoll_*), closefrom/close_range above the program's own fds, a set watched
# from outside (poll, select, another epoll set), EPOLLEXCLUSIVE wake-ups. Each mode runs first without the shim against a
# plain server (the client's expectations are the kernel's own), then under the shim against TLS.
# Then nginx 1.22 as a reverse proxy with a TLS upstream (2 workers, 32 MiB and 48 MiB responses,
# with and without upstream keepalive, SHA-256 compared).
source "$(dirname "$0")/lib.sh" "${1:-build}"
source "$HERE/ev/evlib.sh"

# emode MODE [SERVERMODE]: the baseline without the shim (plain server), then the shim (TLS server).
# The client is ev_epoll, or $EV_CLIENT.
emode() {
	local m=$1 smode=${2:-onreq} cl=${EV_CLIENT:-ev_epoll}
	ev_server "p_$m" plain "$smode" || { fail "plain server did not start"; return; }
	prun "base_$m" "$CL/$cl" "$m" 127.0.0.1 "$PORT"
	if [ "$RC" != 0 ]; then
		fail "baseline without the shim (plain TCP) failed: the client's expectations are not the kernel's: $(grep -a FAIL "$ERR" | head -3 | tr '\n' ' ')"
		return
	fi
	ev_server "t_$m" tls "$smode" || { fail "TLS server did not start"; return; }
	TLSSHIM_RULES="$(rule)" srun "tls_$m" "$CL/$cl" "$m" localhost "$PORT"
	expect_clean_client || return
	local got want
	got=$(kv recv_sha)
	if [ -n "$got" ]; then
		wait_lines "$T/t_$m.rec" 1
		want=$(rec_get "$T/t_$m.rec" sent_sha)
		[ "$got" = "$want" ] || { fail "received SHA-256 $got, the server sent $want"; return; }
	fi
	ok "$(grep -a "^$m=ok" "$OUT" | head -1) (plain TCP baseline: same checks passed)"
}

t_lt() { emode lt; }
t_et() { emode et; }
t_oneshot() { emode oneshot; }
t_exclusive() { emode exclusive; }
t_rdhup() { emode rdhup burst:5000; }
t_multi() { emode multi; }
t_shared_data() { emode shared; }
t_close_reuse() { emode close; }
t_fork() { emode fork; }
t_prereg() { emode prereg; }
# The corners (tests/clients/ev_epx.c): syscall(SYS_epoll_*), closefrom/close_range above the program's
# fds, the set watched by poll/select/another epoll set, EPOLLEXCLUSIVE wake-ups.
t_syscall_epoll() { EV_CLIENT=ev_epx emode syscall; }
t_closefrom_spares_set() { EV_CLIENT=ev_epx emode closefrom; }
t_closefrom_without_close_range_syscall() { EV_CLIENT=ev_epx emode closefromnosys; }
t_close_range_spares_set() { EV_CLIENT=ev_epx emode closerange; }
t_sys_close_range_spares_set() { EV_CLIENT=ev_epx emode closerangesys; }
t_poll_on_set() { EV_CLIENT=ev_epx emode pollset; }
t_select_on_set() { EV_CLIENT=ev_epx emode selectset; }
t_nested_set() { EV_CLIENT=ev_epx emode nested; }
t_close_loop_spares_set() { EV_CLIENT=ev_epx emode closeloop; }
t_dup2_onto_shim_fds_spares_set() { EV_CLIENT=ev_epx emode dup2loop; }
t_nested_set_added_before_tls() { EV_CLIENT=ev_epx emode nestedpre; }
# 4 sets, one thread blocked in each, one TLS fd registered EPOLLEXCLUSIVE in all: one answer wakes 1.
t_exclusive_wakes_one() { EXCL_MAX=1 EV_CLIENT=ev_epx emode exclwake; }
t_exclusive_fork_child_closes() { EV_CLIENT=ev_epx emode exclfork; }

# ---- nginx as a reverse proxy with a TLS upstream (issue 12 item 1) ----
# The upstream: nginx's own TLS (no shim). The proxy: nginx, 2 workers (epoll, edge triggered, the
# upstream socket added to epoll before its connect), under the shim with a tls rule for the upstream.
# /ka/ goes through an upstream block with keepalive (HTTP/1.1 to the upstream, connections reused),
# /nk/ opens a connection per request and never buffers to disk (proxy_max_temp_file_size 0: nginx
# stops reading the upstream while the client is slow, so readiness after back-pressure matters).
ngx_setup() {
	local d=$T/ngx
	rm -rf "$d"
	mkdir -p "$d/up/www" "$d/px/tmp" "$d/up/tmp"
	det_file "$d/up/www/b32.bin" $((32 * 1024 * 1024))
	det_file "$d/up/www/b48.bin" $((48 * 1024 * 1024))
	# The workers run as nobody: pages and the proxy's CA file readable, temp directories writable (the
	# upstream's key is read by its master, before the drop).
	cp "$ROOT" "$d/px/ca.pem"
	[ -d "$SAN_DIR" ] && chmod 1777 "$SAN_DIR" # make asan: the workers' reports must land there too
	chmod 711 "$T" && chmod 755 "$d" "$d/up" "$d/up/www" "$d/px" && chmod 777 "$d/px/tmp" "$d/up/tmp" &&
		chmod 644 "$d/up/www/"*.bin "$d/px/ca.pem"
	NGX_UP=$(free_port)
	cat >"$d/up/nginx.conf" <<NGX
worker_processes 2;
daemon off;
pid $d/up/nginx.pid;
error_log $d/up/error.log info;
events { worker_connections 256; }
http {
  access_log off; sendfile on; keepalive_timeout 30; keepalive_requests 1000;
  client_body_temp_path $d/up/tmp; proxy_temp_path $d/up/tmp; fastcgi_temp_path $d/up/tmp; uwsgi_temp_path $d/up/tmp; scgi_temp_path $d/up/tmp;
  server {
    listen 127.0.0.1:$NGX_UP ssl;
    ssl_certificate $PKI/leaf.pem; ssl_certificate_key $PKI/leaf.key;
    root $d/up/www;
  }
}
NGX
	NGX_PX=$(free_port)
	cat >"$d/px/nginx.conf" <<NGX
worker_processes 2;
daemon off;
pid $d/px/nginx.pid;
error_log $d/px/error.log info;
events { worker_connections 256; }
http {
  access_log $d/px/access.log; keepalive_timeout 30;
  client_body_temp_path $d/px/tmp; proxy_temp_path $d/px/tmp; fastcgi_temp_path $d/px/tmp; uwsgi_temp_path $d/px/tmp; scgi_temp_path $d/px/tmp;
  upstream tlsup { server 127.0.0.1:$NGX_UP; keepalive 4; }
  server {
    listen 127.0.0.1:$NGX_PX;
    location /ka/ { proxy_pass http://tlsup/; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_read_timeout 20s; }
    location /nk/ { proxy_pass http://127.0.0.1:$NGX_UP/; proxy_max_temp_file_size 0; proxy_read_timeout 20s; }
  }
}
NGX
	bg ngxup nginx -c "$d/up/nginx.conf" -p "$d/up"
	wait_listen "$NGX_UP" || { fail "the upstream nginx did not start: $(tail -3 "$d/up/error.log")"; return 1; }
	bg ngxpx env "${SAN_ENV[@]}" TLSSHIM_LOG=info TLSSHIM_LOG_FILE="$d/px/shim.log" TLSSHIM_RULES="tls 127.0.0.1:$NGX_UP name=localhost ca-file=$d/px/ca.pem" LD_PRELOAD="$PRELOAD" \
		nginx -c "$d/px/nginx.conf" -p "$d/px"
	wait_listen "$NGX_PX" || { fail "the proxy nginx did not start: $(tail -3 "$d/px/error.log")"; return 1; }
}

# ngx_get PATH...: each URL fetched through the proxy (one after the other, or all at once with PAR=1);
# fails the case unless every body's SHA-256 is the file's.
ngx_get() {
	local d=$T/ngx i=0 p pids=() bad=""
	for p in "$@"; do
		i=$((i + 1))
		if [ "${PAR:-0}" = 1 ]; then
			timeout 90 curl -sS --max-time 80 -o "$d/got_$i" "http://127.0.0.1:$NGX_PX$p" 2>"$d/curl_$i.err" &
			pids+=($!)
		else
			timeout 90 curl -sS --max-time 80 -o "$d/got_$i" "http://127.0.0.1:$NGX_PX$p" 2>"$d/curl_$i.err"
		fi
	done
	for p in "${pids[@]}"; do wait "$p"; done
	i=0
	for p in "$@"; do
		i=$((i + 1))
		local f=$d/up/www/${p##*/}
		[ "$(sha_of "$d/got_$i" 2>/dev/null)" = "$(sha_of "$f")" ] ||
			bad="$bad $p(got $(stat -c %s "$d/got_$i" 2>/dev/null || echo 0) of $(stat -c %s "$f") bytes: $(head -c 200 "$d/curl_$i.err"))"
	done
	[ -z "$bad" ] && return 0
	fail "through nginx with a TLS upstream:$bad; proxy error.log: $(grep -a -E 'error|upstream' "$d/px/error.log" | tail -3 | tr '\n' ' '); shim: $(grep -av 'handshake done' "$d/px/shim.log" | tail -3 | tr '\n' ' ')"
	return 1
}

# TLS handshakes the proxy made to the upstream (the shim's info lines: nginx puts its error log on the
# workers' stderr, so the shim writes to a file opened by the master).
ngx_handshakes() { grep -ac 'handshake done' "$T/ngx/px/shim.log" 2>/dev/null || true; }

t_nginx_proxy_tls_upstream_keepalive() {
	need nginx || return
	command -v curl >/dev/null || { fail "cannot run: curl is missing (the client, run without the shim)"; return; }
	ngx_setup || return
	ngx_get /ka/b32.bin /ka/b48.bin /ka/b32.bin || return
	local seq
	seq=$(ngx_handshakes)
	PAR=1 ngx_get /ka/b32.bin /ka/b48.bin /ka/b32.bin /ka/b48.bin || return
	[ "${seq:-0}" -ge 1 ] && [ "$seq" -lt 3 ] ||
		{ fail "3 requests in a row made $seq TLS handshakes to the upstream: keepalive did not reuse the connection"; return; }
	ok "7 responses of 32/48 MiB with equal SHA-256 (3 in a row over $seq upstream TLS connection(s), 4 at once; $(ngx_handshakes) handshakes in all), 2 workers"
}

t_nginx_proxy_tls_upstream_no_keepalive() {
	need nginx || return
	command -v curl >/dev/null || { fail "cannot run: curl is missing (the client, run without the shim)"; return; }
	ngx_setup || return
	ngx_get /nk/b32.bin /nk/b48.bin || return
	PAR=1 ngx_get /nk/b48.bin /nk/b32.bin /nk/b48.bin || return
	local h
	h=$(ngx_handshakes)
	[ "${h:-0}" = 5 ] || { fail "5 requests without keepalive made ${h:-0} TLS handshakes to the upstream (want 5: did the rule apply?)"; return; }
	ok "5 responses of 32/48 MiB with equal SHA-256 (2 in a row, 3 at once), $h upstream TLS handshakes, 2 workers, no temp files"
}

tcase lt
tcase et
tcase oneshot
tcase exclusive
tcase rdhup
tcase multi
tcase shared_data
tcase close_reuse
tcase fork
tcase prereg
tcase syscall_epoll
tcase closefrom_spares_set
tcase closefrom_without_close_range_syscall
tcase close_range_spares_set
tcase sys_close_range_spares_set
tcase close_loop_spares_set
tcase dup2_onto_shim_fds_spares_set
tcase poll_on_set
tcase select_on_set
tcase nested_set
tcase nested_set_added_before_tls
tcase exclusive_wakes_one
tcase exclusive_fork_child_closes
tcase nginx_proxy_tls_upstream_keepalive
tcase nginx_proxy_tls_upstream_no_keepalive
finish
