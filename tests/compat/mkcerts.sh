#!/usr/bin/env bash
# tests/compat/mkcerts.sh DIR: the compatibility suite's certificates, made fresh with openssl.
#   ca.pem/ca.key          a test root CA (EC P-256)
#   server.pem/server.key  the servers' certificate (EC P-256), issued by ca.pem, with the names and
#                          addresses the suite's servers use (see SANS below)
#   client.pem/client.key  a client certificate (clientAuth) for the mutual-TLS case
#   other-ca.pem           an unrelated CA (negative controls)
set -euo pipefail
D=$1
mkdir -p "$D"
cd "$D"
exec 3>"$D/mkcerts.log"
o() { openssl "$@" 2>&3 >&3; }
key() { o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }

SANS='DNS:compat-server.test,DNS:compat-v6.test,DNS:tls-backend.internal,DNS:localhost'
SANS+=',IP:10.203.0.1,IP:10.203.0.5,IP:fd00:203:6::1,IP:127.0.0.1'

for ca in ca other-ca; do
	key "$ca"
	o req -new -x509 -key "$ca.key" -subj "/CN=tlsshim compat $ca" -days 30 -sha256 -out "$ca.pem" \
		-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
done

# leaf NAME EKU SAN CN
leaf() {
	key "$1"
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
		"$2" "$3" >"$1.ext"
	o req -new -key "$1.key" -subj "/CN=$4" -out "$1.csr"
	o x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -sha256 \
		-extfile "$1.ext" -out "$1.pem"
}
leaf server serverAuth "$SANS" compat-server.test
leaf client clientAuth 'DNS:compat-client.test' compat-client.test
chmod 644 ./*.key ./*.pem
