package signer

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func BenchmarkSign(b *testing.B) {
	for _, name := range []string{"rsa2048", "rsa4096", "p256", "p384"} {
		b.Run(name, func(b *testing.B) {
			id, err := LoadFiles(LoadOptions{Certificate: fixture(name + ".pem"), PrivateKey: fixture(name + ".key")})
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"durationSeconds":3600}`)
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, "https://rolesanywhere.us-east-1.amazonaws.com/sessions", nil)
				req.Header.Set("Content-Type", "application/json")
				if err := id.SignRequest(req, body, "us-east-1", goldenTime); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRetrieveCached is the cost the SDK pays on every request.
func BenchmarkRetrieveCached(b *testing.B) {
	srv := newFakeServer(b, func(*requestSeen) (int, string, string) {
		return 201, "", sessionJSON(1, time.Now().Add(time.Hour))
	})
	c, err := NewClient(testIdentity(b), testConfig(srv.URL))
	if err != nil {
		b.Fatal(err)
	}
	p := NewProvider(c, ProviderOptions{})
	if _, err := p.Retrieve(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Retrieve(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
