#!/usr/bin/env bash
# starttls=: the protocol's own upgrade run by the shim before the handshake.
#  - a small python peer (starttls_server.py) for every protocol, good and hostile: the upgrade done and
#    the greeting replayed; a server that does not offer the upgrade, one that injects a forged reply
#    after its upgrade reply, one that refuses at the greeting; a wrong-name certificate and an unknown
#    CA; each refused with ECONNREFUSED and one reason line, before any program byte left (the peer
#    records what it received in plaintext);
#  - a recording relay: the program's sentinel never crosses the wire;
#  - real servers that require TLS, started here on free loopback ports with their own config and data:
#    PostgreSQL 15 (hostssl only, scram-sha-256 and password) with unmodified psql; Dovecot (IMAP and
#    POP3 with ssl = required) with curl and python imaplib/poplib; Postfix 3.7 (smtpd_tls_security_level
#    = encrypt) with msmtp --tls=off and curl smtp://; slapd 2.5 (olcSecurity: tls=1) with ldapsearch -x
#    -H ldap:// (no -Z). The servers' own logs show that each session the program used was TLS.
source "$(dirname "$0")/lib.sh" "${1:-build}"

SENTINEL="tlsshim-DLG-SENTINEL-$$-$RANDOM"
# The real servers are started once and kept across cases (stopped at exit).
keep_last_bg() { unset 'CASE_PIDS[-1]'; }
trap 'stop_pg; stop_postfix; cleanup' EXIT
STS=$HERE/starttls_server.py

# peer NAME PROTO BEHAVE [CERT]: the python peer; sets PORT; records plaintext in $T/NAME.rec.
peer() {
	local name=$1 proto=$2 behave=$3 c=${4:-leaf}
	rm -f "$T/$name.port" "$T/$name.rec"
	bg "$name" "$PY" -u "$STS" "$proto" --behave "$behave" --cert "$PKI/$c.pem" --key "$PKI/$c.key" \
		--rec "$T/$name.rec" --portfile "$T/$name.port" --lifetime 120
	wait_portfile "$name"
}
rules() { echo "tls localhost:$1 starttls=$2 ca-file=$ROOT${3:+ $3}"; }
no_sentinel_in() { ! grep -aqF -- "$SENTINEL" "$1" 2>/dev/null; }

# ---- the python peer: every protocol, good ----
good_case() { # PROTO GREETING_REGEX
	peer p "$1" good || { fail "peer did not start"; return; }
	TLSSHIM_RULES=$(rules "$PORT" "$1") srun c "$CL/tcpclient" -s "$SENTINEL\r\nQUIT\r\n" -W localhost "$PORT"
	[ "$RC" = 0 ] || { fail "client failed (rc=$RC)"; return; }
	grep -aq "ECHO $SENTINEL" "$OUT" || { fail "the sentinel did not come back through TLS: $(head -c 300 "$OUT")"; return; }
	if [ -n "$2" ]; then
		head -1 "$OUT" | grep -Eaq -- "$2" || { fail "the greeting was not replayed first: $(head -1 "$OUT")"; return; }
	fi
	no_sentinel_in "$T/p.rec" || { fail "PLAINTEXT: the server received the sentinel before TLS"; return; }
	ok "$(head -1 "$OUT" | tr -d '\r')"
}
t_smtp_good() { good_case smtp '^220-mail.test ESMTP first line'; }
t_imap_good_without_capability() {
	good_case imap '^\* OK test imap ready'
	grep -aq CAPABILITY "$OUT" && fail "the replayed IMAP greeting still has its [CAPABILITY] code"
}
t_pop3_good() { good_case pop3 '^\+OK test pop3 ready'; }
t_ldap_good() { good_case ldap ''; }

# Non-blocking connect: the dialogue advances from the program's poll.
t_smtp_nonblocking_connect() {
	peer p smtp good || { fail "peer did not start"; return; }
	TLSSHIM_RULES=$(rules "$PORT" smtp) srun c "$CL/tcpclient" -b -s "$SENTINEL\r\n" -W localhost "$PORT"
	[ "$RC" = 0 ] && grep -q EINPROGRESS "$ERR" && grep -aq "ECHO $SENTINEL" "$OUT" ||
		{ fail "non-blocking STARTTLS connect failed (rc=$RC)"; return; }
	ok
}

# ---- hostile and wrong servers: refused before any program byte leaves ----
refused_case() { # PROTO BEHAVE CERT REASON_REGEX [ERRNO]
	peer p "$1" "$2" "$3" || { fail "peer did not start"; return; }
	TLSSHIM_RULES=$(rules "$PORT" "$1") srun c "$CL/tcpclient" -s "$SENTINEL\r\n" localhost "$PORT"
	expect_conn_errno "${5:-ECONNREFUSED}" "localhost:$PORT" "$4" || return
	no_sentinel_in "$T/p.rec" || { fail "PLAINTEXT: the server received the sentinel"; return; }
	ok "$(shim_lines | cut -c1-160)"
}
for p in smtp imap pop3 postgres ldap; do
	eval "t_${p}_not_offered() { refused_case $p nooffer leaf 'STARTTLS|STLS|SSLRequest|refused|answered N'; }"
	eval "t_${p}_injection() { refused_case $p inject leaf 'injection'; }"
	eval "t_${p}_wrong_name() { refused_case $p good wrongname 'name mismatch'; }"
	eval "t_${p}_unknown_ca() { refused_case $p good untrusted 'certificate|issuer|CA'; }"
done
t_smtp_refused_greeting() { refused_case smtp refuse leaf "greeting is not 220: '554"; }
t_imap_bye_greeting() { refused_case imap refuse leaf "BYE not today"; }
t_pop3_err_greeting() { refused_case pop3 refuse leaf "-ERR not today"; }

# A server that says nothing: the one deadline (handshake-timeout=) covers the dialogue.
t_silent_server_times_out() {
	start_py silent plain --mode silent || { fail "server did not start"; return; }
	TLSSHIM_RULES="$(rules "$PORT" smtp) handshake-timeout=700ms" srun c "$CL/tcpclient" -s x localhost "$PORT"
	expect_conn_errno ETIMEDOUT "localhost:$PORT" "SMTP STARTTLS dialogue" || return
	[ "$MS" -lt 5000 ] || { fail "took $MS ms for a 700 ms deadline"; return; }
	ok "$MS ms"
}

# ---- the recording relay between the program and the STARTTLS server ----
t_relay_no_plaintext() {
	peer p smtp good || { fail "peer did not start"; return; }
	rm -f "$T/rec" "$T/rec.s2c"
	start_py relay relay --to "$PORT" --rec "$T/rec" || { fail "relay did not start"; return; }
	TLSSHIM_RULES=$(rules "$PORT" smtp) srun c "$CL/tcpclient" -s "$SENTINEL\r\nQUIT\r\n" -W localhost "$PORT"
	[ "$RC" = 0 ] && grep -aq "ECHO $SENTINEL" "$OUT" || { fail "transfer through the relay failed (rc=$RC)"; return; }
	grep -aq STARTTLS "$T/rec" || { fail "the relay did not see the dialogue"; return; }
	no_sentinel_in "$T/rec" || { fail "PLAINTEXT ON THE WIRE: the sentinel is in the recording"; return; }
	no_sentinel_in "$T/rec.s2c" || { fail "PLAINTEXT ON THE WIRE: the echoed sentinel is in the recording"; return; }
	ok "$(stat -c %s "$T/rec") bytes recorded"
}

# ---- PostgreSQL 15: hostssl only ----
PGB=/usr/lib/postgresql/15/bin
PG_PORT=""
PG_DIR=""
PG_TRIED=0
start_pg() {
	[ -n "$PG_PORT" ] && return 0
	[ "$PG_TRIED" = 0 ] && [ -x "$PGB/postgres" ] || return 1
	PG_TRIED=1
	PG_DIR=$T/pg
	mkdir -p "$PG_DIR" && chmod 755 "$T" "$PG_DIR"
	cp "$PKI/leaf.pem" "$PKI/leaf.key" "$PG_DIR/" && echo secretpw >"$PG_DIR/pw"
	chown -R postgres "$PG_DIR" && chmod 600 "$PG_DIR/leaf.key"
	runuser -u postgres -- "$PGB/initdb" -D "$PG_DIR/data" -A scram-sha-256 --pwfile="$PG_DIR/pw" -U postgres \
		>"$T/pg-initdb.log" 2>&1 || return 1
	local port
	port=$(free_port)
	cat >"$PG_DIR/data/pg_hba.conf" <<EOF
local   all postgres peer
hostssl all postgres 127.0.0.1/32 scram-sha-256
hostssl all pwuser   127.0.0.1/32 password
EOF
	cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_DIR'
ssl = on
ssl_cert_file = '$PG_DIR/leaf.pem'
ssl_key_file = '$PG_DIR/leaf.key'
EOF
	runuser -u postgres -- "$PGB/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w -t 30 start >/dev/null 2>&1 || return 1
	runuser -u postgres -- psql -h "$PG_DIR" -p "$port" -U postgres -qc "create user pwuser password 'pwpass'" \
		>>"$T/pg-initdb.log" 2>&1 || return 1
	PG_PORT=$port
}
stop_pg() { [ -n "$PG_DIR" ] && runuser -u postgres -- "$PGB/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1; }
PG_QUERY="select 'ssl=' || ssl || ' ' || version from pg_stat_ssl where pid = pg_backend_pid()"

psql_case() { # USER PASSWORD EXTRA_CONNINFO
	need psql || return
	start_pg || { fail "PostgreSQL did not start: $(tail -3 "$T"/pg*.log "$T"/pg/pg.log 2>/dev/null | tr '\n' ' ')"; return; }
	PGPASSWORD=$2 TLSSHIM_RULES=$(rules "$PG_PORT" postgres) srun psql psql \
		"host=localhost port=$PG_PORT user=$1 dbname=postgres $3" -Atc "$PG_QUERY"
	[ "$RC" = 0 ] && grep -Eq '^ssl=(t|true) TLSv1.[23]' "$OUT" ||
		{ fail "psql failed (rc=$RC): $(head -c 300 "$ERR")"; return; }
	ok "$(cat "$OUT")"
}
t_psql_scram_sslmode_disable() { psql_case postgres secretpw sslmode=disable; }
t_psql_scram_default_sslmode() { psql_case postgres secretpw ""; }
t_psql_password_auth() { psql_case pwuser pwpass sslmode=disable; }
# A client that is not libpq: python speaking the wire protocol itself (SCRAM-SHA-256 computed by the
# client, or a cleartext password), believing its connection plaintext. The server's mechanism list
# reaches it without SCRAM-SHA-256-PLUS (the shim strips it), and the session is TLS by the server's view.
pg_wire_case() { # USER PASSWORD MECHANISMS_SEEN
	start_pg || { fail "PostgreSQL did not start"; return; }
	TLSSHIM_RULES=$(rules "$PG_PORT" postgres) srun pgwire "$PY" "$HERE/pg_wire_client.py" localhost "$PG_PORT" "$1" "$2" "$PG_QUERY"
	[ "$RC" = 0 ] || { fail "the wire client failed (rc=$RC): $(tail -2 "$ERR" | tr '\n' ' ')"; return; }
	grep -qx "mechanisms=$3" "$OUT" || { fail "want mechanisms=$3, the client saw: $(grep mechanisms "$OUT")"; return; }
	grep -Eq '^row=ssl=(t|true) TLSv1.[23]' "$OUT" || { fail "the server did not see TLS: $(cat "$OUT")"; return; }
	ok "$(tr '\n' ' ' <"$OUT")"
}
t_python_wire_client_scram() { pg_wire_case postgres secretpw SCRAM-SHA-256; }
t_python_wire_client_password() { pg_wire_case pwuser pwpass password; }
t_psql_without_shim_is_refused() {
	need psql || return
	start_pg || { fail "PostgreSQL did not start"; return; }
	PGPASSWORD=secretpw prun psql psql "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable" -Atc "select 1"
	[ "$RC" != 0 ] && grep -q 'no pg_hba.conf entry' "$ERR" || { fail "the server accepted plaintext (rc=$RC)"; return; }
	ok "the server requires TLS"
}
t_psql_sslmode_require_fails() {
	need psql || return
	start_pg || { fail "PostgreSQL did not start"; return; }
	PGPASSWORD=secretpw TLSSHIM_RULES=$(rules "$PG_PORT" postgres) srun psql psql \
		"host=localhost port=$PG_PORT user=postgres dbname=postgres sslmode=require" -Atc "select 1"
	[ "$RC" != 0 ] && grep -qi 'SSL' "$ERR" || { fail "sslmode=require should fail as against a server without SSL (rc=$RC)"; return; }
	ok "$(head -1 "$ERR")"
}

# ---- Dovecot: IMAP and POP3 with ssl = required ----
# Dovecot counts a client whose address equals its own as secured (plaintext login allowed): it listens
# on 127.0.0.2, so our clients (from 127.0.0.1) count as remote and must use TLS.
drules() { echo "tls 127.0.0.2:$1 starttls=$2 ca-file=$ROOT name=localhost"; }
DOVE_IMAP=""
DOVE_POP3=""
start_dovecot() {
	[ -n "$DOVE_IMAP" ] && return 0
	[ -x /usr/sbin/dovecot ] || return 1
	local d=$T/dovecot
	mkdir -p "$d/base" "$d/mail" && chmod 755 "$T" "$d" && chown -R dovenull "$d/mail" 2>/dev/null
	local ip pp
	ip=$(free_port)
	pp=$(free_port)
	echo "tester:{PLAIN}testpw" >"$d/passwd"
	cat >"$d/dovecot.conf" <<EOF
base_dir = $d/base
state_dir = $d/base
log_path = $d/dovecot.log
protocols = imap pop3
listen = 127.0.0.2
ssl = required
ssl_cert = <$PKI/leaf.pem
ssl_key = <$PKI/leaf.key
disable_plaintext_auth = yes
first_valid_uid = 1
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/passwd
}
userdb {
  driver = static
  args = uid=dovenull gid=dovenull home=$d/mail/%u
}
mail_location = maildir:$d/mail/%u
service imap-login {
  inet_listener imap {
    port = $ip
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = $pp
  }
  inet_listener pop3s {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service pop3-login {
  chroot =
}
EOF
	bg dovecot /usr/sbin/dovecot -F -c "$d/dovecot.conf"
	keep_last_bg
	local i
	for i in $(seq 1 100); do
		ss -Hltn "sport = :$pp" 2>/dev/null | grep -q . && ss -Hltn "sport = :$ip" 2>/dev/null | grep -q . && break
		sleep 0.1
	done
	DOVE_IMAP=$ip
	DOVE_POP3=$pp
}
t_curl_imap() {
	need curl || return
	start_dovecot || { fail "dovecot did not start: $(tail -5 "$T"/dovecot*.log 2>/dev/null | tr '\n' ' ')"; return; }
	TLSSHIM_RULES=$(drules "$DOVE_IMAP" imap) srun curl curl -sS --max-time 10 -u tester:testpw "imap://127.0.0.2:$DOVE_IMAP/" -X 'LIST "" "*"'
	[ "$RC" = 0 ] && grep -q 'INBOX' "$OUT" || { fail "curl imap failed (rc=$RC): $(head -c 300 "$ERR")"; return; }
	ok "$(tr -d '\r' <"$OUT" | head -1)"
}
t_curl_pop3() {
	need curl || return
	start_dovecot || { fail "dovecot did not start"; return; }
	TLSSHIM_RULES=$(drules "$DOVE_POP3" pop3) srun curl curl -sS --max-time 10 -u tester:testpw "pop3://127.0.0.2:$DOVE_POP3/"
	[ "$RC" = 0 ] || { fail "curl pop3 failed (rc=$RC): $(head -c 300 "$ERR")"; return; }
	ok "LIST: $(wc -l <"$OUT") messages"
}
t_python_imaplib_poplib() {
	start_dovecot || { fail "dovecot did not start"; return; }
	TLSSHIM_RULES="$(drules "$DOVE_IMAP" imap);$(drules "$DOVE_POP3" pop3)" srun py "$PY" -c '
import imaplib, poplib, sys
i = imaplib.IMAP4("127.0.0.2", int(sys.argv[1]))
print("imap-welcome", i.welcome.decode())
print("imap-caps", " ".join(i.capabilities))
i.login("tester", "testpw"); typ, d = i.select("INBOX"); print("imap-select", typ); i.logout()
p = poplib.POP3("127.0.0.2", int(sys.argv[2]))
print("pop3-welcome", p.getwelcome().decode())
p.user("tester"); p.pass_("testpw"); print("pop3-stat", p.stat()); p.quit()
' "$DOVE_IMAP" "$DOVE_POP3"
	[ "$RC" = 0 ] && grep -q '^imap-select OK' "$OUT" && grep -q '^pop3-stat' "$OUT" ||
		{ fail "imaplib/poplib failed (rc=$RC): $(tail -3 "$ERR" | tr '\n' ' ')"; return; }
	grep '^imap-caps' "$OUT" | grep -q LOGINDISABLED && { fail "imaplib saw the pre-TLS LOGINDISABLED"; return; }
	ok "$(grep welcome "$OUT" | tr '\n' ' ')"
}
t_dovecot_without_shim_refuses_login() {
	start_dovecot || { fail "dovecot did not start"; return; }
	prun py "$PY" -c '
import imaplib, sys
i = imaplib.IMAP4("127.0.0.2", int(sys.argv[1]))
print("caps", " ".join(i.capabilities))
try:
    i.login("tester", "testpw"); print("LOGGED-IN")
except imaplib.IMAP4.error as e:
    print("refused", e)
' "$DOVE_IMAP"
	grep -q '^refused' "$OUT" && grep -q LOGINDISABLED "$OUT" || { fail "the server lets a plaintext login in: $(cat "$OUT")"; return; }
	ok "$(grep refused "$OUT")"
}

# ---- Postfix: smtpd_tls_security_level = encrypt ----
# msmtp and libldap look up the machine's own host name, which some /etc/hosts map to 127.0.0.1: the
# rules for these clients say name= (README, "Which name is verified").
# A private instance (its own config, queue and log under $T) on a free loopback port, started with
# `postfix start-fg`; mail is accepted and discarded. smtpd_tls_loglevel = 1 logs every TLS session.
PF=""
PF_PORT=""
PF_TRIED=0
start_postfix() {
	[ -n "$PF_PORT" ] && return 0
	[ "$PF_TRIED" = 0 ] && [ -x /usr/sbin/postfix ] || return 1
	PF_TRIED=1
	local d=$T/postfix port
	mkdir -p "$d/etc" "$d/queue" "$d/data" && chmod 755 "$T" "$d" && chown postfix "$d/data" || return 1
	port=$(free_port)
	cat >"$d/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file_prefixes = $d
maillog_file = $d/maillog
myhostname = mail.test
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
local_transport = discard:
default_transport = discard:
biff = no
smtpd_tls_security_level = encrypt
smtpd_tls_cert_file = $PKI/leaf.pem
smtpd_tls_key_file = $PKI/leaf.key
smtpd_tls_loglevel = 1
EOF
	# chroot off (the queue is not a prepared jail); tlsmgr is needed for TLS at all.
	cat >"$d/etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
	PF=$d
	postfix -c "$d/etc" check >>"$T/postfix-start.log" 2>&1 # creates the queue directories
	bg postfix postfix -c "$d/etc" start-fg
	keep_last_bg
	wait_listen "$port" 127.0.0.1 || return 1
	PF_PORT=$port
}
pf_up() { start_postfix || { fail "postfix did not start: $(tail -3 "$T"/postfix*.log "$PF/maillog" 2>/dev/null | tr '\n' ' ')"; return 1; }; }
stop_postfix() { [ -n "$PF" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1; }
# pf_tls_for_sender ADDR: prints the TLS line of the smtpd session that accepted mail from ADDR ("none"
# when that session was plaintext; nothing when no mail from ADDR was accepted). Postfix reuses smtpd
# processes, so sessions are told apart by the process id and its "connect from" lines.
pf_tls_for_sender() {
	awk -v from="from=<$1>," '
		match($0, /smtpd\[[0-9]+\]/) { pid = substr($0, RSTART, RLENGTH) }
		/smtpd\[/ && / connect from / { tls[pid] = "none" }
		/smtpd\[/ && /TLS connection established/ { sub(/.*TLS connection established from [^ ]* /, ""); tls[pid] = $0 }
		/smtpd\[/ && /: client=/ { q = $6; sub(/:$/, "", q); qt[q] = tls[pid] }
		/qmgr\[/ && index($0, from) { q = $6; sub(/:$/, "", q); print qt[q] }
	' "$PF/maillog" 2>/dev/null
}
pf_case() { # CLIENT_NAME SENDER CMD...: mail from SENDER through Postfix (pf_up first) under the shim, over TLS
	local name=$1 from=$2
	shift 2
	printf 'From: <%s>\r\nSubject: tlsshim %s\r\n\r\n%s\r\n' "$from" "$name" "$SENTINEL" >"$T/mail.txt"
	TLSSHIM_RULES="tls 127.0.0.1:$PF_PORT starttls=smtp ca-file=$ROOT name=localhost" srun_in "$T/mail.txt" "$name" "$@"
	[ "$RC" = 0 ] || { fail "$name failed (rc=$RC): $(head -c 300 "$ERR")"; return; }
	local t i
	for i in $(seq 1 50); do # the queue manager logs the sender just after the client's QUIT
		t=$(pf_tls_for_sender "$from")
		[ -n "$t" ] && break
		sleep 0.1
	done
	[ -n "$t" ] || { fail "postfix logged no mail from $from: $(tail -5 "$PF/maillog" | tr '\n' ' ')"; return; }
	case $t in none) fail "postfix took the mail from $from in plaintext"; return ;; esac
	ok "postfix: $t"
}
t_postfix_curl_smtp() {
	pf_up || return
	need curl || return
	local from="curl-$$-$RANDOM@test"
	pf_case curl "$from" curl -sS --max-time 10 "smtp://127.0.0.1:$PF_PORT" --mail-from "$from" \
		--mail-rcpt someone@localhost -T -
}
t_postfix_msmtp_tls_off() {
	pf_up || return
	need msmtp || return
	local from="msmtp-$$-$RANDOM@test"
	pf_case msmtp "$from" msmtp -C /dev/null --host=127.0.0.1 --port="$PF_PORT" --tls=off --auth=off \
		--timeout=10 --from="$from" someone@localhost
}
t_postfix_without_shim_requires_starttls() {
	need curl || return
	pf_up || return
	printf 'Subject: x\r\n\r\nx\r\n' >"$T/mail.txt"
	prun curl curl -sS --max-time 10 "smtp://127.0.0.1:$PF_PORT" --mail-from plain@test --mail-rcpt someone@localhost -T "$T/mail.txt"
	[ "$RC" != 0 ] && grep -q '530' "$ERR" || { fail "postfix took mail without TLS (rc=$RC)"; return; }
	ok "$(head -1 "$ERR")"
}
t_postfix_unknown_ca_refused() {
	need curl || return
	pf_up || return
	local from="wrongca-$$-$RANDOM@test"
	printf 'Subject: x\r\n\r\n%s\r\n' "$SENTINEL" >"$T/mail.txt"
	TLSSHIM_RULES="tls 127.0.0.1:$PF_PORT starttls=smtp ca-file=$PKI/other-root.pem name=localhost" srun curl curl -sS --max-time 10 \
		"smtp://127.0.0.1:$PF_PORT" --mail-from "$from" --mail-rcpt someone@localhost -T "$T/mail.txt"
	[ "$RC" != 0 ] && [ "$(n_shim_lines)" = 1 ] && shim_lines | grep -q "localhost:$PF_PORT (127.0.0.1)" ||
		{ fail "expected one refusal line (rc=$RC): $(head -c 300 "$ERR")"; return; }
	sleep 0.5
	[ -z "$(pf_tls_for_sender "$from")" ] || { fail "postfix got mail from $from"; return; }
	ok "$(shim_lines | cut -c1-160)"
}

# ---- slapd: olcSecurity: tls=1 ----
# slapd.conf converted to cn=config by slaptest (so the server runs with olcSecurity), one entry added
# with slapadd, `slapd -d stats` logging each operation with its connection number.
LD_PORT=""
LD_TRIED=0
start_slapd() {
	[ -n "$LD_PORT" ] && return 0
	[ "$LD_TRIED" = 0 ] && [ -x /usr/sbin/slapd ] || return 1
	LD_TRIED=1
	local d=$T/slapd port
	mkdir -p "$d/db" "$d/conf" || return 1
	port=$(free_port)
	cat >"$d/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
pidfile $d/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile $PKI/leaf.pem
TLSCertificateKeyFile $PKI/leaf.key
security tls=1
database config
database mdb
suffix "dc=test"
rootdn "cn=admin,dc=test"
rootpw secret
directory $d/db
EOF
	printf 'dn: dc=test\nobjectClass: dcObject\nobjectClass: organization\no: tlsshim\ndc: test\n\n%s\n' \
		"dn: cn=sentinel,dc=test
objectClass: person
cn: sentinel
sn: tlsshim-ldap-entry" >"$d/base.ldif"
	slaptest -f "$d/slapd.conf" -F "$d/conf" >"$T/slapd-setup.log" 2>&1 # warns that the db is not open yet
	grep -rqs '^olcSecurity: tls=1' "$d/conf" || return 1
	slapadd -F "$d/conf" -b dc=test -l "$d/base.ldif" >>"$T/slapd-setup.log" 2>&1 || return 1
	bg slapd slapd -F "$d/conf" -h "ldap://127.0.0.1:$port/" -d stats
	keep_last_bg
	wait_listen "$port" 127.0.0.1 || return 1
	LD_PORT=$port
}
t_slapd_without_shim_confidentiality_required() {
	need ldapsearch || return
	start_slapd || { fail "slapd did not start: $(tail -3 "$T"/slapd*.log 2>/dev/null | tr '\n' ' ')"; return; }
	prun ldapsearch ldapsearch -x -H "ldap://127.0.0.1:$LD_PORT/" -b dc=test -LLL cn=sentinel sn
	[ "$RC" = 13 ] && grep -q 'Confidentiality required' "$ERR" || { fail "slapd answered in plaintext (rc=$RC)"; return; }
	ok "$(head -1 "$ERR")"
}
t_slapd_ldapsearch_starttls() {
	need ldapsearch || return
	start_slapd || { fail "slapd did not start: $(tail -3 "$T"/slapd*.log 2>/dev/null | tr '\n' ' ')"; return; }
	TLSSHIM_RULES="tls 127.0.0.1:$LD_PORT starttls=ldap ca-file=$ROOT name=localhost" srun ldapsearch ldapsearch -x \
		-H "ldap://127.0.0.1:$LD_PORT/" -b dc=test -LLL cn=sentinel sn
	[ "$RC" = 0 ] && grep -q '^sn: tlsshim-ldap-entry' "$OUT" || { fail "ldapsearch failed (rc=$RC): $(head -c 300 "$ERR")"; return; }
	# The connection that ran the search: slapd logged STARTTLS and "TLS established" on it first.
	local c
	c=$(grep 'SRCH base="dc=test"' "$T/slapd.log" | tail -1 | grep -o 'conn=[0-9]*')
	[ -n "$c" ] || { fail "slapd logged no search"; return; }
	grep -q "$c op=0 STARTTLS" "$T/slapd.log" && grep "$c fd=" "$T/slapd.log" | grep -q 'TLS established' ||
		{ fail "slapd's $c was not TLS: $(grep "$c " "$T/slapd.log" | head -5 | tr '\n' ' ')"; return; }
	ok "slapd $c: $(grep "$c fd=.*TLS established" "$T/slapd.log" | grep -o 'tls_proto=.*')"
}

# starttls=postgres, a non-blocking client: the server's AuthenticationSASL arrives in two TLS records
# 300 ms apart. The shim's filter holds the first half; poll must not say readable until the rewritten
# message is there, so no recv after POLLIN gets EAGAIN (event loops that trust POLLIN), and the client
# sees the mechanisms without -PLUS.
# A server whose only mechanism is SCRAM-SHA-256-PLUS: a program that believes its connection plaintext
# could not authenticate, so the shim breaks the connection (README error table): a blocking read and a
# poll-then-read both get ECONNRESET, with one reason line.
t_postgres_plus_only_refused() {
	peer p postgres plusonly || { fail "peer did not start"; return; }
	TLSSHIM_RULES=$(rules "$PORT" postgres) srun py "$PY" -c '
import errno, select, socket, struct, sys
def startup(s):
    body = struct.pack(">I", 196608) + b"user\0u\0\0"
    s.sendall(struct.pack(">I", 4 + len(body)) + body)
def outcome(s):
    try:
        d = s.recv(4096)
        return "data %r" % d[:20]
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
a = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
startup(a)
print("blocking", outcome(a))
b = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
startup(b)
b.setblocking(False)
p = select.poll(); p.register(b, select.POLLIN)
print("polled", p.poll(5000) != [], outcome(b))
' "$PORT"
	[ "$RC" = 0 ] || { fail "client failed (rc=$RC): $(tail -2 "$ERR" | tr '\n' ' ')"; return; }
	grep -qx "blocking ECONNRESET" "$OUT" && grep -qx "polled True ECONNRESET" "$OUT" ||
		{ fail "want ECONNRESET both ways, got: $(tr '\n' ' ' <"$OUT")"; return; }
	[ "$(n_shim_lines)" = 2 ] && shim_lines | grep -q "offers only channel binding" ||
		{ fail "want one reason line per connection: $(shim_lines | head -3)"; return; }
	ok "ECONNRESET for a blocking read and after POLLIN; one line each"
}
t_postgres_split_sasl_nonblocking() {
	peer p postgres split || { fail "peer did not start"; return; }
	TLSSHIM_RULES=$(rules "$PORT" postgres) srun py "$PY" -c '
import select, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
body = struct.pack(">I", 196608) + b"user\0u\0\0"
s.sendall(struct.pack(">I", 4 + len(body)) + body)
s.setblocking(False)
p = select.poll(); p.register(s, select.POLLIN)
data, eagain, polls = b"", 0, 0
while len(data) < 5 or len(data) < 1 + struct.unpack(">I", data[1:5])[0]:
    if not p.poll(5000):
        print("timeout", data); sys.exit(1)
    polls += 1
    try:
        d = s.recv(4096)
    except BlockingIOError:
        eagain += 1; continue
    if not d: print("eof"); sys.exit(1)
    data += d
print("polls", polls, "eagain_after_pollin", eagain)
print("mechs", data[9:].split(b"\0")[:3])
' "$PORT"
	[ "$RC" = 0 ] || { fail "client failed (rc=$RC): $(tail -2 "$OUT" "$ERR" | tr '\n' ' ')"; return; }
	grep -q "eagain_after_pollin 0$" "$OUT" || { fail "recv after POLLIN got EAGAIN: $(grep polls "$OUT")"; return; }
	grep -q "PLUS" "$OUT" && { fail "the client saw SCRAM-SHA-256-PLUS"; return; }
	grep -q "mechs \[b'SCRAM-SHA-256'" "$OUT" || { fail "unexpected mechanisms: $(grep mechs "$OUT")"; return; }
	ok "$(grep polls "$OUT")"
}

# ---- tlsshim probe runs the dialogue: the transcript (greeting, capabilities), then the TLS result ----
TLSSHIM=$BUILD/tlsshim
probe_good_case() { # PROTO REGEX_IN_TRANSCRIPT...
	local proto=$1
	shift
	peer p "$proto" good || { fail "peer did not start"; return; }
	prun probe "$TLSSHIM" probe --rule "$(rules "$PORT" "$proto")" "localhost:$PORT"
	[ "$RC" = 0 ] || { fail "probe failed (rc=$RC): $(grep -E 'FAILED|dialogue' "$OUT" | head -3)"; return; }
	local re
	for re in "$@" '^tls: TLSv1\.[23]' '^verification: ok'; do
		grep -Eq -- "$re" "$OUT" || { fail "probe output lacks /$re/"; return; }
	done
	ok "$(grep -c '^  [CS]' "$OUT") transcript lines"
}
t_probe_smtp_dialogue() {
	probe_good_case smtp '^the SMTP STARTTLS dialogue:' '^  S: 220-mail.test ESMTP first line' \
		'^  C: EHLO ' '^  S: 250-STARTTLS' '^  C: STARTTLS' '^greeting the program reads first'
}
t_probe_imap_dialogue() {
	probe_good_case imap '^the IMAP STARTTLS dialogue:' '^  S: \* OK \[CAPABILITY .*STARTTLS' '^  C: tlsshim1 STARTTLS' \
		'^greeting the program reads first'
	grep -A2 '^greeting the program' "$OUT" | grep -q CAPABILITY && fail "the greeting shown still has [CAPABILITY]"
}
t_probe_pop3_dialogue() { probe_good_case pop3 '^the POP3 STLS dialogue:' '^  S: \+OK test pop3 ready' '^  C: STLS'; }
t_probe_postgres_dialogue() { probe_good_case postgres '^the PostgreSQL SSLRequest:' '^  C: \(8 bytes\) 00 00 00 08 04 d2 16 2f' '^  S: S$'; }
t_probe_ldap_dialogue() { probe_good_case ldap '^the LDAP StartTLS operation:' '^  C: \([0-9]+ bytes\) 30 ' '^  S: \([0-9]+ bytes\) 30 '; }
t_probe_injection_refused() {
	peer p smtp inject || { fail "peer did not start"; return; }
	prun probe "$TLSSHIM" probe --rule "$(rules "$PORT" smtp)" "localhost:$PORT"
	[ "$RC" = 1 ] && grep -q '^dialogue: FAILED: .*injection' "$OUT" || { fail "probe did not refuse (rc=$RC)"; return; }
	grep -q '^tls:' "$OUT" && { fail "probe went on to TLS"; return; }
	ok "$(grep '^dialogue: FAILED' "$OUT" | cut -c1-140)"
}
t_probe_not_offered_refused() {
	peer p smtp nooffer || { fail "peer did not start"; return; }
	prun probe "$TLSSHIM" probe --rule "$(rules "$PORT" smtp)" "localhost:$PORT"
	[ "$RC" = 1 ] && grep -q '^dialogue: FAILED: .*STARTTLS' "$OUT" && grep -q '^  S: 250' "$OUT" ||
		{ fail "probe did not show the refusal (rc=$RC)"; return; }
	ok "$(grep '^dialogue: FAILED' "$OUT" | cut -c1-140)"
}
t_probe_postfix() {
	pf_up || return
	prun probe "$TLSSHIM" probe --rule "tls 127.0.0.1:$PF_PORT starttls=smtp ca-file=$ROOT" "127.0.0.1:$PF_PORT"
	[ "$RC" = 0 ] && grep -q '^  S: 220 mail.test ESMTP' "$OUT" && grep -q '^  S: 250-STARTTLS' "$OUT" &&
		grep -q '^verification: ok' "$OUT" || { fail "probe of postfix failed (rc=$RC): $(grep -E 'FAILED' "$OUT")"; return; }
	ok "$(grep '^tls:' "$OUT")"
}

for p in smtp imap pop3 ldap; do tcase "${p}_good$([ $p = imap ] && echo _without_capability)"; done
tcase smtp_nonblocking_connect
for p in smtp imap pop3 postgres ldap; do
	tcase "${p}_not_offered"
	tcase "${p}_injection"
	tcase "${p}_wrong_name"
	tcase "${p}_unknown_ca"
done
tcase smtp_refused_greeting
tcase imap_bye_greeting
tcase pop3_err_greeting
tcase silent_server_times_out
tcase relay_no_plaintext
tcase psql_without_shim_is_refused
tcase psql_scram_sslmode_disable
tcase psql_scram_default_sslmode
tcase psql_password_auth
tcase python_wire_client_scram
tcase python_wire_client_password
tcase psql_sslmode_require_fails
tcase postgres_split_sasl_nonblocking
tcase postgres_plus_only_refused
tcase dovecot_without_shim_refuses_login
tcase curl_imap
tcase curl_pop3
tcase python_imaplib_poplib
tcase postfix_without_shim_requires_starttls
tcase postfix_curl_smtp
tcase postfix_msmtp_tls_off
tcase postfix_unknown_ca_refused
tcase slapd_without_shim_confidentiality_required
tcase slapd_ldapsearch_starttls
for p in smtp imap pop3 postgres ldap; do tcase "probe_${p}_dialogue"; done
tcase probe_injection_refused
tcase probe_not_offered_refused
tcase probe_postfix
stop_pg
finish
