// Package sysroots verifies TLS server certificates against the system's
// root certificates without parsing all of them.
//
// On Linux, crypto/x509 loads the system's roots by parsing every
// certificate of the CA bundle and then every file of the certificate
// directories: on Debian that is each certificate two or three times,
// about 20 ms of CPU in a fresh process, more than everything else a
// rolesenv start does. This package reads the same files in the same order
// but only indexes the certificates by subject; a handshake then parses
// the few roots whose subject names an issuer of the server's chain and
// verifies against those, as crypto/tls would against the whole pool.
// The chains Go would build are the same: crypto/x509 looks a parent up
// by its subject alone, and a root ends a chain.
//
// Only connections that a [Dialer] makes are verified this way. Anything
// else (a request that goes through a proxy, a configuration with its own
// RootCAs, InsecureSkipVerify, FIPS 140 mode, another operating system) is
// left to crypto/tls as it is.
package sysroots
