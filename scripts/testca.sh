#!/usr/bin/env bash
# Make a throwaway certificate authority and a server certificate for loopback
# TLS tests (scripts/clickhouse.sh start-tls, scripts/kafka.sh start-tls).
#
#   scripts/testca.sh DIR [KEYTYPE]   # KEYTYPE rsa (default) or ec
#
# Writes into DIR (created when missing; existing files are kept, so it is
# idempotent): ca.pem, ca-key.pem, server.pem (for 127.0.0.1, ::1 and
# localhost, signed by the CA), server-key.pem (unencrypted PKCS#8, which
# Kafka's PEM keystore requires), client.pem and client-key.pem (for mutual TLS).
# Valid for 30 days. Never use these anywhere but a test.
set -euo pipefail

dir=${1:?usage: $0 DIR [rsa|ec]}
keytype=${2:-rsa}
mkdir -p "$dir"
cd "$dir"

newkey() {
  case "$keytype" in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null ;;
    ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null ;;
    *) echo "testca: key type rsa or ec, not $keytype" >&2; exit 2 ;;
  esac
  chmod 600 "$1"
}

if [ ! -f ca.pem ]; then
  newkey ca-key.pem
  openssl req -x509 -new -key ca-key.pem -sha256 -days 30 -subj "/CN=keyfleet test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem 2>/dev/null
fi

# sign NAME CN EXT: NAME-key.pem and NAME.pem signed by the CA.
sign() {
  local name=$1 cn=$2 ext=$3
  [ -f "$name.pem" ] && return
  newkey "$name-key.pem"
  openssl req -new -key "$name-key.pem" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 -sha256 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

sign server localhost "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
sign client keyfleet-test-client "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
rm -f ca.srl
echo "$dir"
