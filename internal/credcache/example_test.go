package credcache_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rolesenv/rolesenv/internal/credcache"
	"github.com/rolesenv/rolesenv/signer"
)

// A credential_process opens the cache, hands out what it holds, and
// otherwise fetches and stores new credentials; Close lets the next
// caller in.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "creds.json")
	key := credcache.Key("certificate fingerprint", "trust anchor ARN", "profile ARN", "role ARN")
	fetch := func() *signer.Credentials { // CreateSession, say
		return &signer.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "…", SessionToken: "…",
			Expiration: time.Now().Add(time.Hour)}
	}

	for range 2 {
		cache, err := credcache.Open(context.Background(), path, credcache.Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		creds, ok := cache.Get(key)
		if !ok {
			creds = fetch()
			if err := cache.Put(key, creds); err != nil {
				fmt.Println(err)
			}
		}
		fmt.Println("from the cache:", ok, creds)
		cache.Close()
	}
	// Output:
	// from the cache: false [redacted]
	// from the cache: true [redacted]
}
