#!/usr/bin/env bash
# pki.sh DIR: generates the test PKI into DIR (idempotent: does nothing when DIR/.done exists).
# Everything is EC P-256 unless the name says rsa. Files: NAME.pem (cert), NAME.key, plus
#   root.pem, inter.pem, other-root.pem (CAs); chained-full.pem (leaf+intermediate).
set -euo pipefail
D=$1
[ -f "$D/.done" ] && exit 0
mkdir -p "$D"
cd "$D"
exec 3>"$D/pki.log"
o() { openssl "$@" 2>&3 >&3; }

eckey() { o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
rsakey() { o genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key"; }

# ca NAME SUBJECT [ISSUER]: a CA certificate (self-signed root when no issuer).
ca() {
	local name=$1 subj=$2 issuer=${3:-}
	eckey "$name"
	printf 'basicConstraints=critical,CA:TRUE%s\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n' \
		"$([ -n "$issuer" ] && echo ',pathlen:0')" >"$name.ext"
	if [ -z "$issuer" ]; then
		o req -new -x509 -key "$name.key" -subj "$subj" -days 3650 -sha256 -out "$name.pem" \
			-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
	else
		o req -new -key "$name.key" -subj "$subj" -out "$name.csr"
		printf 'authorityKeyIdentifier=keyid\n' >>"$name.ext"
		o x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -CAcreateserial \
			-days 3650 -sha256 -extfile "$name.ext" -out "$name.pem"
	fi
	# A minimal `openssl ca` setup so leaves can get arbitrary (past/future) dates.
	mkdir -p "$name.db"
	: >"$name.db/index.txt"
	printf '1000\n' >"$name.db/serial"
	cat >"$name.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
dir = $D/$name.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $D/$name.pem
private_key = $D/$name.key
default_md = sha256
policy = p
unique_subject = no
copy_extensions = none
[ p ]
commonName = supplied
CNF
}

# leaf NAME ISSUER SAN|- [keytype] [startdate enddate] [CN]
# SAN "-" means no subjectAltName; ISSUER "self" means self-signed.
leaf() {
	local name=$1 issuer=$2 san=$3 kt=${4:-ec} start=${5:-} end=${6:-} cn=${7:-tlsshim test leaf}
	if [ "$kt" = rsa ]; then rsakey "$name"; else eckey "$name"; fi
	{
		echo 'basicConstraints=critical,CA:FALSE'
		echo 'keyUsage=critical,digitalSignature,keyEncipherment'
		echo 'extendedKeyUsage=serverAuth,clientAuth'
		[ "$san" != - ] && echo "subjectAltName=$san"
	} >"$name.ext"
	o req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
	if [ "$issuer" = self ]; then
		o x509 -req -in "$name.csr" -signkey "$name.key" -days 825 -sha256 -extfile "$name.ext" -out "$name.pem"
	elif [ -n "$start" ]; then
		o ca -batch -config "$issuer.cnf" -in "$name.csr" -startdate "$start" -enddate "$end" \
			-extfile "$name.ext" -notext -out "$name.pem"
	else
		o x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -CAcreateserial \
			-days 825 -sha256 -extfile "$name.ext" -out "$name.pem"
	fi
}

LOCAL='DNS:localhost,IP:127.0.0.1,IP:::1'
ca root '/CN=tlsshim test root CA'
ca inter '/CN=tlsshim test intermediate CA' root
ca other-root '/CN=tlsshim untrusted other root CA'

leaf leaf root "$LOCAL"                                     # the normal good leaf
leaf chained inter "$LOCAL"                                 # issued by the intermediate
cat chained.pem inter.pem >chained-full.pem
leaf wrongname root 'DNS:wrong.example'
leaf expired root "$LOCAL" ec 20200101000000Z 20210101000000Z
leaf notyet root "$LOCAL" ec 20450101000000Z 20460101000000Z
leaf selfsigned self "$LOCAL" ec '' '' localhost
leaf untrusted other-root "$LOCAL"
leaf dnsip root 'DNS:127.0.0.1'                             # an IP written as DNS text
leaf cnonly root - ec '' '' localhost                       # CN=localhost, no SAN
leaf wildcard root 'DNS:*.example.test'
leaf ip2 root 'IP:127.0.0.2'
leaf rsa root "$LOCAL" rsa
leaf dnsonly root 'DNS:localhost'                           # no IP SAN
leaf client root 'DNS:tlsshim-client' ec '' '' tlsshim-client
# a CA directory (c_rehash layout) for ca-dir=
mkdir -p cadir && cp root.pem cadir/ && o rehash cadir
touch .done
