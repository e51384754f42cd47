#!/usr/bin/env bash
# The shared object exports only libc-family hook names and depends only on libc-family libraries.
source "$(dirname "$0")/lib.sh" "${1:-build}"

# Defined dynamic symbols of a shared object: "NAME" per line (version suffix stripped, ABS
# version-node symbols skipped).
defined_syms() {
	readelf --dyn-syms -W "$1" | awk '$7 != "UND" && $7 != "ABS" && ($5 == "GLOBAL" || $5 == "WEAK") && $8 != "" {print $8}' |
		sed 's/@.*//' | sort -u
}

t_exports_only_libc_hooks() {
	need readelf || return
	defined_syms "$SHIM" >"$T/exports"
	[ -s "$T/exports" ] || { fail "no exported symbols at all (readelf failed?)"; return; }
	local bad
	bad=$(grep -Ei '^(wolf|SSL_|TLS|DTLS|wc_|Wc|mp_|sp_|fp_|Sha|Aes|Rsa|Ecc|Hmac|X509|PEM|BIO|EVP|CRYPTO|policy_|tlsshim_)' "$T/exports" | head -10 | tr '\n' ' ')
	[ -z "$bad" ] || { fail "internal symbols exported: $bad"; return; }
	# every exported name must be a symbol that the C library family itself exports
	local libs=() l
	for l in libc.so.6 libpthread.so.0 libdl.so.2 libresolv.so.2 librt.so.1 libm.so.6; do
		local p
		p=$(ldconfig -p | awk -v n="$l" '$1 == n && /x86-64/ {print $NF; exit}')
		[ -n "$p" ] && libs+=("$p")
	done
	[ "${#libs[@]}" -gt 0 ] || { fail "could not find libc via ldconfig -p"; return; }
	for l in "${libs[@]}"; do defined_syms "$l"; done | sort -u >"$T/libc-syms"
	bad=$(comm -23 "$T/exports" "$T/libc-syms" | grep -Ev '^(_init|_fini)$' | head -20 | tr '\n' ' ')
	[ -z "$bad" ] && ok "$(wc -l <"$T/exports") exports" || fail "exported names that are not libc-family functions: $bad"
}

t_no_ssl_symbols_in_nm() {
	need nm || return
	local bad
	bad=$(nm -D --defined-only "$SHIM" 2>/dev/null | awk '{print $3}' | grep -Ei 'wolf|^SSL_|^wc_' | head -5 | tr '\n' ' ')
	[ -z "$bad" ] && ok || fail "nm -D shows TLS library symbols: $bad"
}

t_ldd_only_libc_family() {
	need ldd || return
	ldd "$SHIM" >"$T/ldd" 2>&1 || { fail "ldd failed: $(head -3 "$T/ldd")"; return; }
	local bad
	local allowed='linux-vdso\.so|/lib64/ld-linux|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|libresolv\.so|librt\.so'
	# the sanitizer build (make asan, TLSSHIM_ASAN=1) links the sanitizer runtime; nothing else
	[ "${TLSSHIM_ASAN:-0}" = 1 ] && allowed="$allowed|libclang_rt\.(asan|ubsan)|libgcc_s\.so"
	bad=$(grep -Ev "^\s*($allowed)" "$T/ldd" | tr -s ' \t' ' ' | head -5)
	[ -z "$bad" ] && ok || fail "non-libc dependencies: $bad"
}

t_not_linked_to_openssl_or_wolfssl() {
	need ldd || return
	ldd "$SHIM" 2>&1 | grep -Eiq 'libssl|libcrypto|libwolfssl|libgnutls' && { fail "links a TLS library dynamically: $(ldd "$SHIM" | grep -Ei 'ssl|crypto|gnutls')"; return; }
	ok
}

tcase exports_only_libc_hooks
tcase no_ssl_symbols_in_nm
tcase ldd_only_libc_family
tcase not_linked_to_openssl_or_wolfssl
finish
