#!/bin/sh
# Test certificates for etcd over TLS, in the layout of scripts/gen-certs.sh so that tests and
# scripts agree: DIR/ca.pem + DIR/ca.key (a private CA, made on first use, reused after), and for
# each NAME: DIR/NAME.pem + DIR/NAME.key, CN=NAME, SAN DNS:NAME,DNS:localhost,IP:127.0.0.1,
# extended key usage serverAuth and clientAuth (etcd's JSON gateway dials etcd's gRPC port with
# the server certificate as a client certificate, so a server certificate needs clientAuth too).
#
#   tests/etcd/make_test_certs.sh [--san SANS] DIR NAME...
#
# --san replaces the SAN list (e.g. "DNS:elsewhere.invalid"): for tests of a certificate that
# does not name the host. EC P-256 keys: quick to make on a loaded machine. Keys are 0600.
set -eu

san=""
if [ "${1:-}" = "--san" ]; then
  [ $# -ge 2 ] || { echo "usage: $0 [--san SANS] DIR NAME..." >&2; exit 2; }
  san=$2
  shift 2
fi
[ $# -ge 2 ] || { echo "usage: $0 [--san SANS] DIR NAME..." >&2; exit 2; }
dir=$1
shift
mkdir -p "$dir"
umask 077

if [ ! -f "$dir/ca.pem" ]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 -subj "/CN=ordermesh test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

for name in "$@"; do
  names=${san:-"DNS:$name,DNS:localhost,IP:127.0.0.1"}
  ext="$dir/$name.ext"
  printf '%s\n' "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=$names" > "$ext"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/$name.pem" -days 825 -extfile "$ext" 2>/dev/null
  rm -f "$dir/$name.csr" "$ext"
done
# Certificates are public; keys stay 0600 (umask above).
chmod 0644 "$dir/ca.pem"
for name in "$@"; do chmod 0644 "$dir/$name.pem"; done
