package awsdev

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/rolesenv/rolesenv/internal/devpki"
)

// tlsConfig loads or makes the CA, issues a server certificate for the
// loopback names and the listen address, and remembers the CA for CAPEM.
func (s *Server) tlsConfig(opts Options, addr net.Addr) (*tls.Config, error) {
	var ca *devpki.Cert
	var err error
	if opts.TLSCACert != nil {
		ca, err = devpki.Load(opts.TLSCACert, opts.TLSCAKey)
		if err != nil {
			return nil, fmt.Errorf("failed to load the TLS CA: %w", err)
		}
	} else {
		ca, err = devpki.NewCA(devpki.Options{CommonName: "rolesenv awsdev CA", Organization: "rolesenv dev"})
		if err != nil {
			return nil, fmt.Errorf("failed to make a TLS CA: %w", err)
		}
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() && !ta.IP.IsLoopback() {
		ips = append(ips, ta.IP)
	}
	leaf, err := ca.Leaf(devpki.Options{CommonName: "127.0.0.1", DNSNames: []string{"localhost"}, IPAddresses: ips})
	if err != nil {
		return nil, fmt.Errorf("failed to issue the TLS server certificate: %w", err)
	}
	s.caPEM = ca.CertPEM()
	s.caKeyPEM = ca.KeyPEM()
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}, nil
}
