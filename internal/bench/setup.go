package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// bench is everything a run shares: the temporary directory, the rolesenv
// binary, the emulator and the proxies in front of it.
type bench struct {
	dir       string
	rolesenv  string // the binary under test
	floorCmd  string // the floor program (floorproc.go); "" measures no floor CPU
	rootsFile string // the system's roots plus the emulator's CA
	emu       *emulator
	proxies   proxies
	quick     bool
	log       func(format string, args ...any)
}

// isolateAWS makes this process unable to reach the real AWS: no instance
// metadata, no shared configuration or credentials of the user. Every
// rolesenv the harness starts gets an environment built from scratch
// (baseEnv), never this one.
func isolateAWS(dir string) error {
	cfg := filepath.Join(dir, "aws-config")
	creds := filepath.Join(dir, "aws-credentials")
	for _, p := range []string{cfg, creds} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return err
		}
	}
	for k, v := range map[string]string{
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             cfg,
		"AWS_SHARED_CREDENTIALS_FILE": creds,
		"AWS_REGION":                  "us-east-1",
		"AWS_DEFAULT_REGION":          "us-east-1",
	} {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		_ = os.Unsetenv(k)
	}
	return nil
}

// buildRolesenv builds the binary as `make build` does (static, stripped)
// into dir.
func buildRolesenv(dir string, tags ...string) (string, error) {
	out := filepath.Join(dir, "rolesenv")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out}
	if len(tags) > 0 {
		out += "-" + strings.Join(tags, "-")
		args = []string{"build", "-trimpath", "-tags", strings.Join(tags, ","), "-ldflags", "-s -w", "-o", out}
	}
	cmd := exec.Command("go", append(args, "github.com/rolesenv/rolesenv")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("failed to build rolesenv: %w", err)
	}
	return out, nil
}

// creds says how a rolesenv (or an in-process client) gets credentials.
type creds int

const (
	credStatic creds = iota // an access key in the environment
	credRA                  // IAM Roles Anywhere CreateSession
)

func (c creds) String() string {
	if c == credRA {
		return "Roles Anywhere"
	}
	return "static"
}

// trust is how a rolesenv under test trusts the emulator's certificate.
type trust int

const (
	// trustSystem: the emulator's CA is one more root of the system's
	// store (SSL_CERT_FILE names the system's bundle plus that CA), so
	// rolesenv loads and parses the system's roots as it does against AWS.
	trustSystem trust = iota
	// trustBundle: AWS_CA_BUNDLE names the emulator's CA, as with
	// `rolesenv dev`; the SDK then trusts that file only.
	trustBundle
	// trustPlain: no TLS, every endpoint plain HTTP (SSL_CERT_FILE is
	// still set, as on any machine: nothing should load it).
	trustPlain
)

func (t trust) String() string {
	switch t {
	case trustBundle:
		return "AWS_CA_BUNDLE"
	case trustPlain:
		return "plain HTTP"
	}
	return "system roots"
}

// urls are the base URLs of Roles Anywhere, Secrets Manager and Parameter
// Store that a client with trust t sends to: each through its own proxy.
func (b *bench) urls(t trust) (ra, sm, ssm string) {
	if t == trustPlain {
		return b.proxies.plainRA.url, b.proxies.plainSM.url, b.proxies.plainSSM.url
	}
	return b.proxies.ra.url, b.proxies.sm.url, b.proxies.ssm.url
}

// systemRoots writes the system's CA bundle plus the emulator's CA into
// one file, for SSL_CERT_FILE.
func (b *bench) systemRoots() error {
	var data []byte
	// Where Go looks on Linux, first found wins.
	for _, f := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem", "/etc/pki/tls/cacert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem"} {
		if d, err := os.ReadFile(f); err == nil {
			data = append(d, '\n')
			break
		}
	}
	data = append(data, b.emu.caPEM...)
	b.rootsFile = filepath.Join(b.dir, "system-roots.pem")
	return os.WriteFile(b.rootsFile, data, 0o600)
}

// baseEnv is the whole environment of a rolesenv under test: nothing of
// the harness's own, the temporary AWS files, explicit endpoints (each
// service through its own proxy, as each AWS service has its own host),
// the trust and the credentials.
func (b *bench) baseEnv(c creds, t trust) []string {
	raURL, smURL, ssmURL := b.urls(t)
	emuURL := b.emu.URL
	if t == trustPlain {
		emuURL = b.emu.HTTPURL
	}
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + b.dir,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(b.dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(b.dir, "aws-credentials"),
		"AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL=" + emuURL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + smURL,
		"AWS_ENDPOINT_URL_SSM=" + ssmURL,
	}
	switch t {
	case trustSystem, trustPlain:
		env = append(env, "SSL_CERT_FILE="+b.rootsFile)
	case trustBundle:
		env = append(env, "AWS_CA_BUNDLE="+b.emu.CAFile)
	}
	switch c {
	case credStatic:
		env = append(env, "AWS_ACCESS_KEY_ID="+b.emu.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+b.emu.SecretKey)
	case credRA:
		env = append(env,
			"ROLESENV_CERTIFICATE="+b.emu.CertFile,
			"ROLESENV_PRIVATE_KEY="+b.emu.KeyFile,
			"ROLESENV_TRUST_ANCHOR_ARN="+b.emu.TrustAnchorARN,
			"ROLESENV_PROFILE_ARN="+b.emu.ProfileARN,
			"ROLESENV_ROLE_ARN="+b.emu.RoleARN,
			"ROLESENV_ENDPOINT="+raURL)
	}
	return env
}

// proxy is one Toxiproxy proxy in front of the emulator.
type proxy struct {
	p   *toxiproxy.Proxy
	url string
}

// proxies put each service on its own address, as in AWS
// (rolesanywhere.REGION.amazonaws.com, secretsmanager..., ssm...): a
// client cannot share one connection between two services.
type proxies struct {
	srv         *toxiproxy.ApiServer
	ra, sm, ssm proxy
	// The same before the emulator's plain-HTTP listener.
	plainRA, plainSM, plainSSM proxy
}

func (p proxies) all() []proxy {
	return []proxy{p.ra, p.sm, p.ssm, p.plainRA, p.plainSM, p.plainSSM}
}

// startProxies runs a Toxiproxy server in this process, on 127.0.0.1,
// with proxies to the emulator's HTTPS and plain-HTTP listeners.
func startProxies(httpsURL, httpURL string) (proxies, error) {
	tlsUp, err := url.Parse(httpsURL)
	if err != nil {
		return proxies{}, err
	}
	plainUp, err := url.Parse(httpURL)
	if err != nil {
		return proxies{}, err
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	ps := proxies{srv: srv}
	for _, p := range []struct {
		dst      *proxy
		name     string
		upstream *url.URL
	}{
		{&ps.ra, "rolesanywhere", tlsUp}, {&ps.sm, "secretsmanager", tlsUp}, {&ps.ssm, "ssm", tlsUp},
		{&ps.plainRA, "rolesanywhere-http", plainUp}, {&ps.plainSM, "secretsmanager-http", plainUp}, {&ps.plainSSM, "ssm-http", plainUp},
	} {
		tp := toxiproxy.NewProxy(srv, p.name, "127.0.0.1:0", p.upstream.Host)
		if err := srv.Collection.Add(tp, true); err != nil {
			return proxies{}, err
		}
		*p.dst = proxy{p: tp, url: p.upstream.Scheme + "://" + tp.Listen}
	}
	return ps, nil
}

func (p proxies) close() { _ = p.srv.Collection.Clear() }

// setToxicLatency adds rtt to every round trip through the proxies: half
// on the way up, half on the way down. Data is delayed, the TCP handshake
// with the proxy is not (Toxiproxy works above TCP), so a new connection
// costs one round trip (TLS 1.3) where it costs two on a real network.
// rtt 0 removes the toxics.
func (p proxies) setToxicLatency(rtt time.Duration) error {
	for _, x := range p.all() {
		for _, stream := range []string{"upstream", "downstream"} {
			name := "latency_" + stream
			if x.p.Toxics.GetToxic(name) != nil {
				if err := x.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
					return err
				}
			}
			if rtt == 0 {
				continue
			}
			js := fmt.Sprintf(`{"name":%q,"type":"latency","stream":%q,"attributes":{"latency":%d}}`,
				name, stream, (rtt / 2).Milliseconds())
			if _, err := x.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
				return err
			}
		}
	}
	return nil
}

// latencyMode is how round-trip time is added.
type latencyMode int

const (
	viaEmulator  latencyMode = iota // the emulator waits before each answer
	viaToxiproxy                    // the proxies delay data both ways
)

func (m latencyMode) String() string {
	if m == viaToxiproxy {
		return "toxiproxy"
	}
	return "emulator"
}

// setRTT sets the round-trip time one way and clears the other.
func (b *bench) setRTT(m latencyMode, rtt time.Duration) error {
	emu, toxic := rtt, time.Duration(0)
	if m == viaToxiproxy {
		emu, toxic = 0, rtt
	}
	if err := b.emu.setLatency(emu); err != nil {
		return err
	}
	return b.proxies.setToxicLatency(toxic)
}
