package tpmkey

import (
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// synthetic is a key file made without a TPM: a real public part (the
// ECC storage template stands in for a key) and a private blob of bytes.
func synthetic(t testing.TB, mutate func(*keyFileASN1)) []byte {
	t.Helper()
	k := keyFileASN1{
		Type:      oidLoadableKey,
		EmptyAuth: asn1.RawValue{FullBytes: []byte{0xa0, 3, 1, 1, 1}},
		Parent:    0x40000001,
		PubKey:    tpm2.Marshal(tpm2.New2B(eccStorageTemplate())),
		PrivKey:   tpm2.Marshal(tpm2.TPM2BPrivate{Buffer: []byte("not a real private part")}),
	}
	if mutate != nil {
		mutate(&k)
	}
	der, err := asn1.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: PEMType, Bytes: der})
}

func TestParseKeyFile(t *testing.T) {
	kf, err := ParseKeyFile(synthetic(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !kf.EmptyAuth || kf.Parent != tpm2.TPMRHOwner || kf.RSAParent {
		t.Errorf("parsed %+v", kf)
	}
	tests := []struct {
		name   string
		mutate func(*keyFileASN1)
		want   error
	}{
		{"importable", func(k *keyFileASN1) { k.Type = oidImportableKey }, ErrUnsupported},
		{"sealed", func(k *keyFileASN1) { k.Type = oidSealedData }, ErrUnsupported},
		{"policy", func(k *keyFileASN1) { k.Secret = []byte{1} }, ErrUnsupported},
		{"transient parent", func(k *keyFileASN1) { k.Parent = 0x80000000 }, ErrUnsupported},
		{"negative parent", func(k *keyFileASN1) { k.Parent = -1 }, ErrMalformed},
		{"short public", func(k *keyFileASN1) { k.PubKey = []byte{0, 9, 1} }, ErrMalformed},
		{"bad boolean", func(k *keyFileASN1) { k.EmptyAuth = asn1.RawValue{FullBytes: []byte{0xa0, 3, 2, 1, 1}} }, ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := ParseKeyFile(synthetic(t, tt.mutate)); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if !IsKeyFile(synthetic(t, nil)) || IsKeyFile([]byte("-----BEGIN PRIVATE KEY-----")) {
		t.Error("IsKeyFile")
	}
}

func FuzzParseKeyFile(f *testing.F) {
	f.Add(synthetic(f, nil))
	f.Add(synthetic(f, func(k *keyFileASN1) { k.Parent = 0x81000001; k.Description = "d" }))
	f.Add([]byte("-----BEGIN TSS2 PRIVATE KEY-----\n-----END TSS2 PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := ParseKeyFile(data)
		if err == nil && kf.pub == nil {
			t.Fatal("parsed without a public part")
		}
	})
}

// TestParseHandle: a handle is read as the official helper reads it:
// hexadecimal, with or without 0x; only persistent handles are keys.
func TestParseHandle(t *testing.T) {
	for _, c := range []struct {
		ref  string
		want uint32 // 0: an error
	}{
		{"handle:0x81000001", 0x81000001},
		{"handle:0X8100ABCD", 0x8100abcd},
		{"handle:81000001", 0x81000001},
		{"handle:810000ff", 0x810000ff},
		{"handle:0x80000001", 0},
		{"handle:2164260865", 0}, // decimal is not read
		{"handle:", 0},
		{"handle:0x", 0},
		{"handle:0x1810000001", 0},
		{"handle:zz", 0},
		{"0x81000001", 0},
	} {
		h, err := ParseHandle(c.ref)
		switch {
		case c.want == 0 && err == nil:
			t.Errorf("%q: 0x%08x, want an error", c.ref, uint32(h))
		case c.want != 0 && (err != nil || uint32(h) != c.want):
			t.Errorf("%q: 0x%08x, %v; want 0x%08x", c.ref, uint32(h), err, c.want)
		case err != nil && !errors.Is(err, ErrUnsupported):
			t.Errorf("%q: %v, want ErrUnsupported", c.ref, err)
		}
	}
}
