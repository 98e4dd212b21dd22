package signer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
)

// Encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo) with PBES2 (RFC
// 8018): a key derived from the passphrase with PBKDF2 (RFC 8018) or scrypt
// (RFC 7914), then AES-CBC. These are what `openssl pkcs8 -topk8 -v2 ...`
// and `openssl genpkey -aes256` write. Older PBES1 schemes (DES, RC2, MD5)
// are refused: they are weak and nothing current writes them.

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}

	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// Work bounds for the key derivation. A file chooses its own cost; these
// keep a hostile or corrupt one from taking minutes or gigabytes. They are
// far above what OpenSSL and other tools write by default.
var (
	maxPBKDF2Iterations = 10_000_000
	maxScryptMemory     = 1 << 30 // bytes: 128 * N * r * p
)

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

type scryptParams struct {
	Salt                     []byte
	CostParameter            int
	BlockSize                int
	ParallelizationParameter int
	KeyLength                int `asn1:"optional"`
}

// isEncryptedPKCS8 reports whether der has the shape of an
// EncryptedPrivateKeyInfo (of any scheme).
func isEncryptedPKCS8(der []byte) bool {
	var info encryptedPrivateKeyInfo
	rest, err := asn1.Unmarshal(der, &info)
	return err == nil && len(rest) == 0 && len(info.Algorithm.Algorithm) > 0
}

// decryptPKCS8 decrypts an EncryptedPrivateKeyInfo and returns the
// PrivateKeyInfo DER inside it.
func decryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: not an encrypted PKCS#8 key", ErrMalformed)
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("%w: encryption scheme %s (only PBES2 with AES-CBC is supported)",
			ErrUnsupportedKey, info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: bad PBES2 parameters", ErrMalformed)
	}
	keyLen, err := aesKeyLength(params.EncryptionScheme.Algorithm)
	if err != nil {
		return nil, err
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(rest) != 0 || len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("%w: bad AES-CBC parameters", ErrMalformed)
	}
	key, err := deriveKey(params.KeyDerivationFunc, passphrase, keyLen)
	if err != nil {
		return nil, err
	}
	data := info.EncryptedData
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: encrypted data is not a whole number of AES blocks", ErrMalformed)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, data)
	plain, ok := unpad(plain)
	if !ok {
		// With the wrong key, the padding is wrong 255 times in 256; the
		// caller's parse of the result catches the rest.
		return nil, ErrWrongPassphrase
	}
	return plain, nil
}

func aesKeyLength(oid asn1.ObjectIdentifier) (int, error) {
	switch {
	case oid.Equal(oidAES128CBC):
		return 16, nil
	case oid.Equal(oidAES192CBC):
		return 24, nil
	case oid.Equal(oidAES256CBC):
		return 32, nil
	}
	return 0, fmt.Errorf("%w: cipher %s (only AES-128/192/256-CBC are supported)", ErrUnsupportedKey, oid)
}

func deriveKey(kdf pkix.AlgorithmIdentifier, passphrase []byte, keyLen int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("%w: bad PBKDF2 parameters", ErrMalformed)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("%w: PBKDF2 key length %d does not fit the cipher", ErrMalformed, p.KeyLength)
		}
		if p.IterationCount < 1 || p.IterationCount > maxPBKDF2Iterations {
			return nil, fmt.Errorf("%w: PBKDF2 iteration count %d is out of bounds (1 to %d)",
				ErrUnsupportedKey, p.IterationCount, maxPBKDF2Iterations)
		}
		h, err := prfHash(p.PRF.Algorithm)
		if err != nil {
			return nil, err
		}
		return pbkdf2.Key(h, string(passphrase), p.Salt, p.IterationCount, keyLen)
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("%w: bad scrypt parameters", ErrMalformed)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("%w: scrypt key length %d does not fit the cipher", ErrMalformed, p.KeyLength)
		}
		n, r, par := p.CostParameter, p.BlockSize, p.ParallelizationParameter
		if n < 2 || n&(n-1) != 0 || r < 1 || par < 1 || r > maxScryptMemory/128 || par > maxScryptMemory/128 ||
			n > maxScryptMemory/128/r || int64(128)*int64(n)*int64(r)*int64(par) > int64(maxScryptMemory) {
			return nil, fmt.Errorf("%w: scrypt parameters N=%d r=%d p=%d are out of bounds", ErrUnsupportedKey, n, r, par)
		}
		return scrypt.Key(passphrase, p.Salt, n, r, par, keyLen)
	}
	return nil, fmt.Errorf("%w: key derivation %s (only PBKDF2 and scrypt are supported)", ErrUnsupportedKey, kdf.Algorithm)
}

func prfHash(oid asn1.ObjectIdentifier) (func() hash.Hash, error) {
	switch {
	case len(oid) == 0, oid.Equal(oidHMACSHA1): // the default is HMAC-SHA1
		return sha1.New, nil
	case oid.Equal(oidHMACSHA224):
		return sha256.New224, nil
	case oid.Equal(oidHMACSHA256):
		return sha256.New, nil
	case oid.Equal(oidHMACSHA384):
		return sha512.New384, nil
	case oid.Equal(oidHMACSHA512):
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: PBKDF2 PRF %s", ErrUnsupportedKey, oid)
}

// unpad removes PKCS#7 padding in constant time with respect to the
// padding bytes.
func unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, false
	}
	want := make([]byte, n)
	for i := range want {
		want[i] = byte(n)
	}
	if subtle.ConstantTimeCompare(b[len(b)-n:], want) != 1 {
		return nil, false
	}
	return b[:len(b)-n], true
}
