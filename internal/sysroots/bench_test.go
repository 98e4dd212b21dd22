package sysroots

import (
	"crypto/x509"
	"os"
	"testing"
)

func BenchmarkLoadIndex(b *testing.B) {
	for b.Loop() {
		if _, err := load(os.Getenv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadX509(b *testing.B) {
	for b.Loop() {
		// What x509.SystemCertPool does on its first call on Debian.
		p := x509.NewCertPool()
		for _, f := range []string{"/etc/ssl/certs/ca-certificates.crt"} {
			data, _ := os.ReadFile(f)
			p.AppendCertsFromPEM(data)
		}
		entries, _ := os.ReadDir("/etc/ssl/certs")
		for _, e := range entries {
			if sameDirLink(e, "/etc/ssl/certs") {
				continue
			}
			data, _ := os.ReadFile("/etc/ssl/certs/" + e.Name())
			p.AppendCertsFromPEM(data)
		}
	}
}
