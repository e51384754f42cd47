#!/usr/bin/env bash
# matrix/pki-extra.sh DIR BASE: the extra certificates test_matrix.sh needs, in DIR, issued by the
# shared test PKI in BASE (tests/integration/pki.sh; BASE is only read, never written: serials are
# random and the CRL/OCSP database lives in DIR). Idempotent: nothing is done when DIR/.done exists.
#   wild            DNS:*.example.com (root)
#   noca-inter      an "intermediate" with basicConstraints CA:FALSE; noca-leaf issued by it
#   eku-client      extendedKeyUsage=clientAuth only
#   ncdns-inter     nameConstraints permitted DNS:.allowed.test; ncdns-bad (DNS:localhost), ncdns-ok
#   ncip-inter      nameConstraints permitted IP:10.0.0.0/8; ncip-leaf (IP:127.0.0.1)
#   rsa1024         1024-bit RSA leaf
#   sha1-leaf       leaf signed with SHA-1 by the root
#   sha1-inter      intermediate signed with SHA-1 by the root; sha1i-leaf (SHA-256) issued by it
#   good, revoked   root-issued through `openssl ca` (db in DIR/ca.db); revoked is revoked
#   crl.pem         the root's CRL listing revoked; ocsp-good.der / ocsp-revoked.der staples
#   client-enc.key  the base PKI's client key, AES-256 encrypted with the password in client-enc.pw
set -euo pipefail
D=$1
B=$2
[ -f "$D/.done" ] && exit 0
mkdir -p "$D"
cd "$D"
exec 3>"$D/pki-extra.log"
o() { openssl "$@" 2>&3 >&3; }
serial() { printf '0x%s' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"; }
LOCAL='DNS:localhost,IP:127.0.0.1,IP:::1'

eckey() { o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }

# sign NAME ISSUER_PEM ISSUER_KEY EXTFILE MD: NAME.csr -> NAME.pem
sign() {
	o x509 -req -in "$1.csr" -CA "$2" -CAkey "$3" -set_serial "$(serial)" -days 825 -"$5" \
		-extfile "$4" -out "$1.pem"
}
# leafext NAME SAN [EKU]: writes NAME.ext for a server leaf
leafext() {
	{
		echo 'basicConstraints=critical,CA:FALSE'
		echo 'keyUsage=critical,digitalSignature,keyEncipherment'
		echo "extendedKeyUsage=${3:-serverAuth,clientAuth}"
		echo "subjectAltName=$2"
	} >"$1.ext"
}
# leaf NAME ISSUER(prefix: DIR-relative or $B path without .pem) SAN [EKU] [md] [keyspec]
leaf() {
	local name=$1 issuer=$2 san=$3 eku=${4:-} md=${5:-sha256} keyspec=${6:-ec}
	case $keyspec in
	ec) eckey "$name" ;;
	rsa*) o genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${keyspec#rsa}" -out "$name.key" ;;
	esac
	leafext "$name" "$san" "$eku"
	o req -new -key "$name.key" -subj "/CN=matrix $name" -out "$name.csr"
	sign "$name" "$issuer.pem" "$issuer.key" "$name.ext" "$md"
}
# inter NAME EXTRA_EXT_LINES [md]: an intermediate issued by the base root
inter() {
	local name=$1 ext=$2 md=${3:-sha256}
	eckey "$name"
	printf '%b\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$ext" >"$name.ext"
	o req -new -key "$name.key" -subj "/CN=matrix $name" -out "$name.csr"
	sign "$name" "$B/root.pem" "$B/root.key" "$name.ext" "$md"
}

leaf wild "$B/root" 'DNS:*.example.com'
leaf eku-client "$B/root" "$LOCAL" clientAuth
leaf rsa1024 "$B/root" "$LOCAL" '' sha256 rsa1024
leaf sha1-leaf "$B/root" "$LOCAL" '' sha1

inter noca-inter 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign'
leaf noca-leaf noca-inter "$LOCAL"
inter ncdns-inter 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nnameConstraints=critical,permitted;DNS:.allowed.test'
leaf ncdns-bad ncdns-inter 'DNS:localhost'
leaf ncdns-ok ncdns-inter 'DNS:ok.allowed.test'
inter ncip-inter 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nnameConstraints=critical,permitted;IP:10.0.0.0/255.0.0.0'
leaf ncip-leaf ncip-inter 'IP:127.0.0.1'
inter sha1-inter 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign' sha1
leaf sha1i-leaf sha1-inter "$LOCAL"

# revocation: an `openssl ca` database of our own for the base root
mkdir -p ca.db
: >ca.db/index.txt
serial | sed 's/^0x//' >ca.db/serial
cat >ca.cnf <<CNF
[ ca ]
default_ca = d
[ d ]
dir = $D/ca.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $B/root.pem
private_key = $B/root.key
default_md = sha256
default_days = 825
default_crl_days = 30
policy = p
unique_subject = no
copy_extensions = none
[ p ]
commonName = supplied
CNF
for n in good revoked; do
	eckey "$n"
	leafext "$n" "$LOCAL"
	o req -new -key "$n.key" -subj "/CN=matrix $n" -out "$n.csr"
	o ca -batch -config ca.cnf -in "$n.csr" -extfile "$n.ext" -notext -out "$n.pem"
done
o ca -config ca.cnf -revoke revoked.pem -crl_reason keyCompromise
o ca -config ca.cnf -gencrl -out crl.pem
for n in good revoked; do
	o ocsp -issuer "$B/root.pem" -cert "$n.pem" -reqout "ocsp-$n.req"
	o ocsp -index ca.db/index.txt -rsigner "$B/root.pem" -rkey "$B/root.key" -CA "$B/root.pem" \
		-reqin "ocsp-$n.req" -respout "ocsp-$n.der" -ndays 7
done

printf 'matrix-key-password-%s\n' "$RANDOM$RANDOM" >client-enc.pw
o pkey -in "$B/client.key" -aes256 -passout "file:client-enc.pw" -out client-enc.key
touch .done
