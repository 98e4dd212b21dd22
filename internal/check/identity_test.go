package check

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/devpki"
)

// pki is a root, an intermediate it issued, and files in a directory.
type pki struct {
	dir   string
	root  *devpki.Cert
	inter *devpki.Cert
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	root, err := devpki.NewCA(devpki.Options{CommonName: "root"})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate(devpki.Options{CommonName: "inter"})
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: t.TempDir(), root: root, inter: inter}
	p.write(t, "root.pem", root.CertPEM(), 0o644)
	return p
}

func (p *pki) write(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// leaf writes a leaf of issuer as NAME.pem and NAME.key.
func (p *pki) leaf(t *testing.T, name string, issuer *devpki.Cert, opts devpki.Options) IdentityFiles {
	t.Helper()
	if opts.CommonName == "" {
		opts.CommonName = name
	}
	c, err := issuer.Leaf(opts)
	if err != nil {
		t.Fatal(err)
	}
	return IdentityFiles{
		Certificate: p.write(t, name+".pem", c.CertPEM(), 0o644),
		PrivateKey:  p.write(t, name+".key", c.KeyPEM(), 0o600),
	}
}

// statuses maps each row's check, without its file name, to its status.
func statuses(rows []Row) map[string]Status {
	m := map[string]Status{}
	for _, r := range rows {
		name := r.Check
		for _, prefix := range []string{"certificate ", "private key ", "intermediates ", "chain to ", "CA certificate "} {
			if strings.HasPrefix(name, prefix) && strings.Contains(name, "/") {
				name = strings.TrimSpace(prefix)
			}
		}
		m[name] = r.Status
	}
	return m
}

func TestIdentity(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	good := p.leaf(t, "good", p.root, devpki.Options{})
	viaInter := p.leaf(t, "via-inter", p.inter, devpki.Options{})
	interFile := p.write(t, "inter.pem", p.inter.CertPEM(), 0o644)
	other, err := devpki.NewCA(devpki.Options{CommonName: "other"})
	if err != nil {
		t.Fatal(err)
	}
	bothInOrder := p.write(t, "chain.pem", append(p.inter.CertPEM(), p.root.CertPEM()...), 0o644)
	reversed := p.write(t, "reversed.pem", append(p.root.CertPEM(), p.inter.CertPEM()...), 0o644)
	notPEM := p.write(t, "garbage.pem", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), 0o644)
	missing := filepath.Join(p.dir, "missing.pem")

	with := func(f IdentityFiles, change func(*IdentityFiles)) IdentityFiles { change(&f); return f }
	tests := []struct {
		name    string
		files   IdentityFiles
		want    map[string]Status
		blocked string
	}{
		{"healthy, with the CA", with(good, func(f *IdentityFiles) { f.CA = filepath.Join(p.dir, "root.pem") }),
			map[string]Status{"certificate": OK, "private key": OK, "key file permissions": OK, "key matches certificate": OK,
				"certificate validity": OK, "certificate usage": OK, "chain to": OK}, ""},
		{"through an intermediate", with(viaInter, func(f *IdentityFiles) { f.Intermediates = interFile; f.CA = filepath.Join(p.dir, "root.pem") }),
			map[string]Status{"intermediates": OK, "chain order": OK, "chain to": OK, "certificate validity": OK}, ""},
		{"intermediates missing: the CA check fails, nothing blocks", with(viaInter, func(f *IdentityFiles) { f.CA = filepath.Join(p.dir, "root.pem") }),
			map[string]Status{"chain to": Fail, "certificate validity": OK}, ""},
		{"intermediates listed root first", with(viaInter, func(f *IdentityFiles) { f.Intermediates = reversed }),
			map[string]Status{"intermediates": OK, "chain order": Warn}, ""},
		{"intermediates in order up to the root", with(viaInter, func(f *IdentityFiles) { f.Intermediates = bothInOrder }),
			map[string]Status{"intermediates": OK, "chain order": OK}, ""},
		{"unreadable intermediates", with(viaInter, func(f *IdentityFiles) { f.Intermediates = notPEM }),
			map[string]Status{"intermediates": Fail, "certificate": OK, "key matches certificate": OK}, "intermediates " + notPEM},
		{"a certificate of another CA", with(p.leaf(t, "other", other, devpki.Options{}), func(f *IdentityFiles) { f.CA = filepath.Join(p.dir, "root.pem") }),
			map[string]Status{"chain to": Fail, "key matches certificate": OK}, ""},
		{"unreadable CA file", with(good, func(f *IdentityFiles) { f.CA = missing }),
			map[string]Status{"CA certificate": Fail}, ""},
		{"expired", p.leaf(t, "expired", p.root, devpki.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}),
			map[string]Status{"certificate validity": Fail, "certificate usage": OK}, "certificate validity"},
		{"not valid yet", p.leaf(t, "future", p.root, devpki.Options{NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}),
			map[string]Status{"certificate validity": Fail}, "certificate validity"},
		{"expiring", p.leaf(t, "soon", p.root, devpki.Options{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(3 * time.Hour)}),
			map[string]Status{"certificate validity": Warn}, ""},
		{"no digitalSignature", p.leaf(t, "encipher", p.root, devpki.Options{KeyUsage: x509.KeyUsageKeyEncipherment}),
			map[string]Status{"certificate usage": Fail, "certificate validity": OK}, "certificate usage"},
		{"no key usage extension", p.leaf(t, "noku", p.root, devpki.Options{NoKeyUsage: true}),
			map[string]Status{"certificate usage": OK}, ""},
		{"key readable by others", with(good, func(f *IdentityFiles) {
			f.PrivateKey = p.write(t, "open.key", mustRead(t, good.PrivateKey), 0o644)
		}), map[string]Status{"key file permissions": Warn, "key matches certificate": OK}, ""},
		{"key of another certificate", with(good, func(f *IdentityFiles) { f.PrivateKey = viaInter.PrivateKey }),
			map[string]Status{"key matches certificate": Fail, "certificate validity": OK}, "key matches certificate"},
		{"missing certificate: the key is still read", with(good, func(f *IdentityFiles) { f.Certificate = missing }),
			map[string]Status{"certificate": Fail, "private key": OK, "key matches certificate": NotRun, "certificate validity": NotRun}, "certificate " + missing},
		{"missing key: the certificate is still checked", with(good, func(f *IdentityFiles) { f.PrivateKey = missing }),
			map[string]Status{"certificate": OK, "private key": Fail, "key matches certificate": NotRun, "certificate validity": OK}, "private key " + missing},
		{"a CA certificate as the leaf", IdentityFiles{Certificate: filepath.Join(p.dir, "root.pem"),
			PrivateKey: p.write(t, "root.key", p.root.KeyPEM(), 0o600)},
			map[string]Status{"certificate usage": Fail, "key matches certificate": OK}, "certificate usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, blocked := Identity(tt.files, now)
			got := statuses(rows)
			for check, want := range tt.want {
				if got[check] != want {
					t.Errorf("%s: %v, want %v", check, got[check], want)
				}
			}
			if blocked != tt.blocked {
				t.Errorf("blocked = %q, want %q", blocked, tt.blocked)
			}
			for _, r := range rows {
				if r.Group != Local || r.Detail == "" {
					t.Errorf("row %+v: want group local and a detail", r)
				}
				if r.Status == Fail && r.Check == "local checks" {
					t.Errorf("the signer refused what the rows passed: %s", r.Detail)
				}
			}
			if t.Failed() {
				for _, r := range rows {
					t.Logf("%-7s %s: %s", r.Status, r.Check, r.Detail)
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400*24*time.Hour + time.Hour: "400 days",
		50 * time.Hour:               "2 days",
		47 * time.Hour:               "47 hours",
		119 * time.Minute:            "119 minutes",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
