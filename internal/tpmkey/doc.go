// Package tpmkey signs with private keys that live in a TPM 2.0 and never
// leave it: a [Key] is a crypto.Signer whose Sign asks the TPM.
//
// A key is named by a file in the TSS2 PEM form ("-----BEGIN TSS2 PRIVATE
// KEY-----", the TPM 2.0 key files format that tpm2-tools'
// tpm2_encodeobject, the TPM2 OpenSSL provider and GnuTLS write), whose
// parent is a persistent handle or a hierarchy (then the parent is made
// again from the standard storage-key template, ECC P-256 unless the file
// asks for RSA), or by a persistent handle ("handle:0x81000001"). RSA keys
// sign with RSASSA-PKCS1-v1_5 or RSA-PSS, ECC keys (P-256, P-384) with
// ECDSA; both by the TPM's own schemes.
//
// Call [Open] first. Every Sign opens the TPM, loads the key, signs and
// flushes what it loaded, then closes the TPM: no session or handle lives
// between signatures, so a process that signs for days survives a
// resource manager that restarts, and several processes share one TPM.
// Open reads the key's public part, once, for the certificate check.
//
// Security: the key's password is kept in memory for the life of the Key
// and sent to the TPM in a password session (in clear on the bus, as
// tpm2-tools does without a salted session). After the TPM refuses the
// password, a Key never sends it again, so that retries cannot drive the
// TPM into dictionary-attack lockout. Any process that can open the TPM
// device and read the key file (and knows the password) can sign with the
// key: the TPM keeps the key from being copied, not from being used.
//
// Errors are *Error, which say whether the problem is one of configuration
// (Config) or of reaching the TPM (Unavailable).
package tpmkey
