package main

import (
	"crypto"
	"io"
	"sync"

	"github.com/rolesenv/rolesenv/signer"
)

// lazyKey is a key in hardware (a TPM, a token) that is opened at its
// first signature: credential-process with --cache-file opens it only
// when the cache misses, so a cached answer costs no login, no probe
// signature and no touch of a YubiKey. Public is the certificate's
// public key; the key opened must have the same, or signing fails with
// a configuration error. A failed open is tried again at the next
// signature (a token plugged in meanwhile).
type lazyKey struct {
	pub  crypto.PublicKey
	open func() (crypto.Signer, error)

	mu  sync.Mutex
	key crypto.Signer
}

func (l *lazyKey) Public() crypto.PublicKey { return l.pub }

func (l *lazyKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	l.mu.Lock()
	if l.key == nil {
		key, err := l.open()
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		if k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(l.pub) {
			l.mu.Unlock()
			return nil, &configError{msg: "the private key does not match the certificate",
				hint: "the certificate and the key are not a pair"}
		}
		l.key = key
	}
	key := l.key
	l.mu.Unlock()
	return key.Sign(rand, digest, opts)
}

// openKey opens a hardware key now, or, when a.lazyKeys and the
// certificate's public key is known, at its first signature.
func (a *app) openKey(opts *signer.LoadOptions, open func() (crypto.Signer, error)) (crypto.Signer, error) {
	if a.lazyKeys {
		if pub := certificatePublicKey(opts); pub != nil {
			return &lazyKey{pub: pub, open: open}, nil
		}
	}
	return open()
}

// certificatePublicKey is the public key of the certificate opts name,
// or nil when it cannot be read here (the loader then says why).
func certificatePublicKey(opts *signer.LoadOptions) crypto.PublicKey {
	data := opts.CertificateData
	if data == nil {
		var err error
		if data, err = readSmallFile(opts.Certificate, signer.MaxFileSize); err != nil {
			return nil
		}
	}
	c, err := signer.ParseCertificate(data)
	if err != nil {
		return nil
	}
	return c.PublicKey
}
