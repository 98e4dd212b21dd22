package main

import (
	"crypto"
	"io"
	"sync"
	"time"

	"github.com/rolesenv/rolesenv/signer"
)

// lazyKey is a key in hardware (a TPM, a token) that is opened at its
// first signature, or a key file read when the cache misses
// (lazyKeyFile): credential-process with --cache-file opens it only
// when the cache misses, so a cached answer costs no login, no probe
// signature, no touch of a YubiKey and no parsing of a key file. Public is the certificate's
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
	key, err := l.load()
	if err != nil {
		return nil, err
	}
	return key.Sign(rand, digest, opts)
}

// load opens the key if it is not open yet.
func (l *lazyKey) load() (crypto.Signer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.key != nil {
		return l.key, nil
	}
	key, err := l.open()
	if err != nil {
		return nil, err
	}
	if k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(l.pub) {
		return nil, &configError{msg: "the private key does not match the certificate",
			hint: "the certificate and the key are not a pair"}
	}
	l.key = key
	return key, nil
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

// lazyKeyFile stands in for the key file opts name when a.lazyKeys:
// credential-process reads and parses it (for RSA, the costliest part of
// a cached answer after the process's start) only when the cache misses,
// by loadKeyFile before CreateSession, so that its errors are the same
// as when it is read at once. Its public key is the certificate's, set
// once the certificate is loaded (the loader does not ask for it). Nil
// when opts name no separate key file.
func (a *app) lazyKeyFile(cf *credFlags, opts *signer.LoadOptions) *lazyKey {
	if !a.lazyKeys || opts.Signer != nil || opts.PrivateKey == "" || opts.PrivateKey == opts.Certificate {
		return nil
	}
	load := *opts
	return &lazyKey{open: func() (crypto.Signer, error) {
		id, err := signer.LoadFiles(load)
		if err != nil {
			return nil, withPassphraseHint(cf.withFlag(err))
		}
		warns, err := id.Check(time.Now())
		if err != nil {
			return nil, cf.withFlag(err)
		}
		for _, w := range warns {
			if w.Path == id.KeyPath() { // the certificate's were logged when it was read
				a.log.Warn(w.Msg, "file", w.Path)
			}
		}
		return id.Signer(), nil
	}}
}

// loadKeyFile reads the key file that lazyKeyFile put off, if any.
func (a *app) loadKeyFile() error {
	if a.keyFile == nil {
		return nil
	}
	_, err := a.keyFile.load()
	return err
}
