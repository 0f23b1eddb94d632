#!/usr/bin/env bash
# Makes the certificates of a cluster's mutual TLS (docs/SECURITY.md, "Cluster plane"):
#
#   scripts/gen-certs.sh DIR NAME...
#
#   DIR/ca.pem, DIR/ca.key   the cluster CA (made once; reused when DIR/ca.key exists, so that
#                            certificates made later join the same cluster)
#   DIR/NAME.pem, NAME.key   one certificate per node: CN=NAME, SAN DNS:NAME, DNS:localhost,
#                            IP:127.0.0.1, usable as TLS server and client (orderd's cluster
#                            port and its etcd client alike); made again when asked again
#
# orderd: --tls-cert DIR/NAME.pem --tls-key DIR/NAME.key --tls-ca DIR/ca.pem (NAME = --node-id).
# Keys are mode 0600 and DIR 0700. Keep ca.key away from the nodes in production: whoever holds
# it can make a member. Validity: CA 10 years, nodes ORDERMESH_CERT_DAYS (default 825) days.
set -euo pipefail

die() { printf 'gen-certs: %s\n' "$*" >&2; exit 2; }

(($# >= 2)) || die "usage: gen-certs.sh DIR NAME... (see the comment at the top)"
command -v openssl >/dev/null 2>&1 || die "the openssl CLI is missing (scripts/setup.sh installs it)"
DIR="$1"
shift
DAYS="${ORDERMESH_CERT_DAYS:-825}"
[[ "$DAYS" =~ ^[0-9]{1,5}$ ]] || die "ORDERMESH_CERT_DAYS must be a number of days"

# Node names become file names and certificate names: the same rule as orderd's --node-id.
for name in "$@"; do
  [[ "$name" =~ ^[A-Za-z0-9._-]{1,64}$ && "$name" != "ca" && "$name" != .* ]] ||
    die "bad node name '$name' (must match [A-Za-z0-9._-]{1,64}, not 'ca', not starting with '.')"
done

umask 077
mkdir -p "$DIR"
chmod 0700 "$DIR"

if [[ ! -f "$DIR/ca.key" ]]; then
  # P-256 keys: fast to make and to handshake with; Go (etcd) and OpenSSL (CAF) both take them.
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" -days 3650 -sha256 \
    -subj "/O=ordermesh/CN=ordermesh cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
    die "could not make the CA in $DIR"
elif [[ ! -f "$DIR/ca.pem" ]]; then
  die "$DIR/ca.key exists without $DIR/ca.pem"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for name in "$@"; do
  printf '%s\n' \
    "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" >"$tmp/ext.cnf"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$tmp/$name.key" -out "$tmp/$name.csr" -subj "/O=ordermesh/CN=$name" 2>/dev/null ||
    die "could not make the key of $name"
  # A random serial per certificate (no serial file shared between runs).
  openssl x509 -req -in "$tmp/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -sha256 \
    -extfile "$tmp/ext.cnf" -out "$tmp/$name.pem" 2>/dev/null ||
    die "could not sign the certificate of $name"
  mv -f "$tmp/$name.key" "$DIR/$name.key"
  mv -f "$tmp/$name.pem" "$DIR/$name.pem"
  chmod 0600 "$DIR/$name.key"
done
chmod 0600 "$DIR/ca.key"
printf 'gen-certs: %s: CA ca.pem, nodes: %s\n' "$DIR" "$*"
