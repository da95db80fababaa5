#!/usr/bin/env bash
# Test certificates for the TLS tests (ECDSA P-256, valid 100 years): a CA, an engine (server)
# certificate for localhost and 127.0.0.1 signed by it, a client certificate signed by it, and a
# second, unrelated CA. Not secrets: they only ever protect a test server on 127.0.0.1.
# Re-run to regenerate (the tests need no change).
set -euo pipefail
cd "$(dirname "$0")"
days=36500
key() { openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$1"; }
ca() {
  key "$1-key.pem"
  openssl req -x509 -new -key "$1-key.pem" -sha256 -days $days -subj "/CN=atq test $1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.pem"
}
leaf() { # name, CA, extensions
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=atq test $1" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2-key.pem" -CAcreateserial -sha256 -days $days \
    -extfile <(printf '%s\n' "$3") -out "$1.pem"
  rm -f "$1.csr" "$2.srl"
}
ca ca
ca other-ca
leaf server ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f ca-key.pem other-ca-key.pem
