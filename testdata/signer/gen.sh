#!/usr/bin/env bash
# Regenerates the signer test fixtures with the openssl CLI (3.x).
# Run by hand from this directory; the output is committed. Tests never run
# it: golden files depend on these exact keys, so regenerate only on purpose
# and then refresh the golden files with `go test ./signer -update`.
set -euo pipefail
cd "$(dirname "$0")"
PASS='correct horse battery staple'
DAYS=36500
EXT=$(mktemp)
trap 'rm -f "$EXT"' EXIT
cat >"$EXT" <<'CONF'
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[nosign]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
extendedKeyUsage = clientAuth
CONF

key() { # key FILE ALGORITHM OPTIONS...
  local f=$1; shift
  openssl genpkey -quiet -algorithm "$@" -out "$f"
}
issue() { # issue NAME KEY ISSUER ISSUERKEY SECTION SUBJECT
  openssl req -new -key "$2" -subj "$6" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$3" -CAkey "$4" -set_serial "0x$(openssl rand -hex 16)" \
    -days $DAYS -sha256 -extfile "$EXT" -extensions "$5" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}

# Root CA (RSA) and an intermediate CA (P-384) below it.
key root.key RSA -pkeyopt rsa_keygen_bits:2048
openssl req -new -x509 -key root.key -subj "/CN=rolesenv test root CA" -days $DAYS -sha256 \
  -config "$EXT" -extensions ca -out root.pem
key intermediate.key EC -pkeyopt ec_paramgen_curve:P-384
issue intermediate intermediate.key root.pem root.key intermediate "/CN=rolesenv test intermediate CA"

# One leaf per supported algorithm, issued by the root. Keys are PKCS#8 PEM.
for bits in 2048 3072 4096; do
  key rsa$bits.key RSA -pkeyopt rsa_keygen_bits:$bits
  issue rsa$bits rsa$bits.key root.pem root.key leaf "/CN=rsa$bits.test.invalid"
done
for curve in P-256 P-384 P-521; do
  n=p${curve#P-}
  key $n.key EC -pkeyopt ec_paramgen_curve:$curve
  issue $n $n.key root.pem root.key leaf "/CN=$n.test.invalid"
done

# A leaf issued by the intermediate, and the intermediates bundle.
key chained.key EC -pkeyopt ec_paramgen_curve:P-256
issue chained chained.key intermediate.pem intermediate.key leaf "/CN=chained.test.invalid"
cp intermediate.pem intermediates.pem

# The same keys in every other encoding.
openssl x509 -in rsa2048.pem -outform DER -out rsa2048.der
openssl pkcs8 -topk8 -nocrypt -in rsa2048.key -outform DER -out rsa2048.pkcs8.der
openssl pkey -in rsa2048.key -traditional -out rsa2048.pkcs1.pem
openssl rsa -in rsa2048.key -traditional -outform DER -out rsa2048.pkcs1.der 2>/dev/null
openssl pkey -in p256.key -traditional -out p256.sec1.pem
openssl ec -in p256.key -outform DER -out p256.sec1.der 2>/dev/null
# Encrypted PKCS#8: PBES2 with PBKDF2 (several PRFs and AES sizes) or scrypt.
openssl pkcs8 -topk8 -in rsa2048.key -v2 aes-256-cbc -v2prf hmacWithSHA256 -passout "pass:$PASS" -out rsa2048.pbkdf2-aes256.pem
openssl pkcs8 -topk8 -in rsa3072.key -v2 aes-128-cbc -v2prf hmacWithSHA1 -passout "pass:$PASS" -outform DER -out rsa3072.pbkdf2-aes128-sha1.der
openssl pkcs8 -topk8 -in p384.key -v2 aes-192-cbc -v2prf hmacWithSHA512 -passout "pass:$PASS" -out p384.pbkdf2-aes192-sha512.pem
openssl pkcs8 -topk8 -in p256.key -scrypt -scrypt_N 1024 -scrypt_r 8 -scrypt_p 1 -passout "pass:$PASS" -out p256.scrypt-aes256.pem
# An old-style PEM-encrypted key (Proc-Type/DEK-Info), which is refused.
openssl rsa -in rsa2048.key -traditional -aes256 -passout "pass:$PASS" -out rsa2048.legacy-encrypted.pem 2>/dev/null

# PKCS#12: OpenSSL 3's defaults (AES-256-CBC, PBKDF2, HMAC-SHA256 MAC), the
# legacy 3DES/SHA-1 form, and a bundle carrying the intermediate.
openssl pkcs12 -export -inkey rsa2048.key -in rsa2048.pem -passout "pass:$PASS" -out rsa2048.p12
openssl pkcs12 -export -inkey p521.key -in p521.pem -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES \
  -macalg sha1 -passout "pass:$PASS" -out p521.legacy.p12
openssl pkcs12 -export -inkey chained.key -in chained.pem -certfile intermediates.pem -passout "pass:$PASS" -out chained.p12

# One PEM file holding the key and the certificate.
cat p384.key p384.pem >p384.combined.pem

# Inputs that must be refused.
key rsa1024.key RSA -pkeyopt rsa_keygen_bits:1024
issue rsa1024 rsa1024.key root.pem root.key leaf "/CN=rsa1024.test.invalid"
key ed25519.key ED25519
issue ed25519 ed25519.key root.pem root.key leaf "/CN=ed25519.test.invalid"
issue nosign p256.key root.pem root.key nosign "/CN=nosign.test.invalid"
