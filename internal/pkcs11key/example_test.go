package pkcs11key_test

import (
	"crypto"
	"crypto/sha256"
	"fmt"
	"os"

	"github.com/rolesenv/rolesenv/internal/pkcs11key"
)

// A key on a token, found by its label, signs a digest; the PIN comes
// from the environment.
func ExampleOpen() {
	key, err := pkcs11key.Open("pkcs11:token=app;object=app-1", pkcs11key.Options{
		Module: "/usr/lib/softhsm/libsofthsm2.so",
		PIN:    []byte(os.Getenv("ROLESENV_PKCS11_PIN")),
	})
	if err != nil {
		fmt.Println(err) // names the URI, the module and, for an ambiguous URI, the candidates
		return
	}
	defer key.Close()
	digest := sha256.Sum256([]byte("string to sign"))
	sig, err := key.Sign(nil, digest[:], crypto.SHA256) // ASN.1 DER for EC keys
	fmt.Println(len(sig) > 0, err)
}
