package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/bench/floor"
	"github.com/rolesenv/rolesenv/internal/devpki"
)

// The emulator runs in a process of its own (this program in emulator
// mode), so that its CPU and file descriptors are not the harness's: the
// fleet alone holds about 12,000 connections at each end, and one process
// may open 20,000 files here. The harness drives it through its control
// API and the AWS APIs, as `rolesenv dev` users do.

// Sizes of the data set the emulator is seeded with.
const (
	maxSecrets = 200 // bench/s000 ... bench/s199
	maxParams  = 20  // /bench/p00 ... /bench/p19
)

func secretName(i int) string { return floor.SecretName(i) }
func paramName(i int) string  { return floor.ParamName(i) }

// emuInfo is what the emulator process reports once it serves: where it
// listens and the names of everything the benchmarks use. It holds no
// secret value (the keys are the emulator's random test keys).
type emuInfo struct {
	URL            string `json:"url"`
	HTTPURL        string `json:"httpUrl"` // the same emulator over plain HTTP
	CAFile         string `json:"caFile"`
	CACertFile     string `json:"caCertFile"` // Roles Anywhere trust anchor CA
	CAKeyFile      string `json:"caKeyFile"`
	CertFile       string `json:"certFile"`
	KeyFile        string `json:"keyFile"`
	TrustAnchorARN string `json:"trustAnchorArn"`
	ProfileARN     string `json:"profileArn"`
	RoleARN        string `json:"roleArn"`
	AccessKeyID    string `json:"accessKeyId"`
	SecretKey      string `json:"secretKey"`
}

// runEmulator is the emulator process: it seeds the data, writes the
// files, prints emuInfo as one JSON line and serves until its standard
// input closes (the harness exited).
func runEmulator(dir string) error {
	s, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	// The same emulator over plain HTTP too, for the cells without TLS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	plain := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = plain.Serve(ln) }()
	defer plain.Close()
	info := emuInfo{URL: s.URL(), HTTPURL: "http://" + ln.Addr().String()}
	write := func(name string, data []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, data, 0o600)
	}
	if info.CAFile, err = write("tls-ca.pem", s.CAPEM()); err != nil {
		return err
	}
	ca, err := devpki.NewCA(devpki.Options{CommonName: "rolesenv bench CA", KeyType: devpki.P256})
	if err != nil {
		return err
	}
	leaf, err := ca.Leaf(devpki.Options{CommonName: "rolesenv-bench", KeyType: devpki.P256})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		dst  *string
		name string
		data []byte
	}{
		{&info.CACertFile, "ra-ca.pem", ca.CertPEM()},
		{&info.CAKeyFile, "ra-ca-key.pem", ca.KeyPEM()},
		{&info.CertFile, "ra-cert.pem", leaf.CertPEM()},
		{&info.KeyFile, "ra-key.pem", leaf.KeyPEM()},
	} {
		if *f.dst, err = write(f.name, f.data); err != nil {
			return err
		}
	}
	info.RoleARN = s.CreateRole("bench", awsdev.RoleOptions{Policy: awsdev.AllowAll})
	info.TrustAnchorARN = s.CreateTrustAnchor(ca.Cert, awsdev.TrustAnchorOptions{})
	info.ProfileARN = s.CreateProfile(awsdev.ProfileOptions{RoleARNs: []string{info.RoleARN}, DurationSeconds: 3600})
	info.AccessKeyID, info.SecretKey = s.CreateUser("bench", awsdev.AllowAll)
	for i := range maxSecrets {
		// About the size of a typical password or API key.
		if _, err := s.CreateSecret(secretName(i), fmt.Sprintf("bench-value-%03d-0123456789abcdef0123456789", i)); err != nil {
			return err
		}
	}
	for i := range maxParams {
		if _, err := s.PutParameter(paramName(i), "SecureString", fmt.Sprintf("bench-param-%02d", i)); err != nil {
			return err
		}
	}
	line, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := fmt.Printf("%s\n", line); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// emulator is the harness's handle on the emulator process.
type emulator struct {
	emuInfo
	cmd    *exec.Cmd
	stdin  io.Closer
	pool   *x509.CertPool
	caPEM  []byte
	client *http.Client // for the control API
}

// startEmulator starts this program in emulator mode and waits for its
// report.
func startEmulator(dir string, env []string) (*emulator, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-emulator", "-dir", dir)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &emulator{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		e.close()
		return nil, fmt.Errorf("the emulator did not start: %v", err)
	}
	if err := json.Unmarshal(line, &e.emuInfo); err != nil {
		e.close()
		return nil, err
	}
	if e.caPEM, err = os.ReadFile(e.CAFile); err != nil {
		e.close()
		return nil, err
	}
	e.pool = x509.NewCertPool()
	e.pool.AppendCertsFromPEM(e.caPEM)
	e.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}}
	return e, nil
}

func (e *emulator) close() {
	_ = e.stdin.Close()
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
}

// pid is the emulator process's id, for its CPU time.
func (e *emulator) pid() int { return e.cmd.Process.Pid }

func (e *emulator) control(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+"/_awsdev/"+path, rd)
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("control %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (e *emulator) setLatency(d time.Duration) error {
	return e.control(http.MethodPost, "latency", map[string]string{"duration": d.String()}, nil)
}

func (e *emulator) setQuota(op string, tps float64) error {
	return e.control(http.MethodPost, "quota", map[string]any{"op": op, "tps": tps}, nil)
}

func (e *emulator) resetCalls() error {
	return e.control(http.MethodPost, "calls/reset", nil, nil)
}

// counts are the emulator's call counters.
type counts struct {
	Calls     map[string]int64 `json:"calls"`
	Throttled map[string]int64 `json:"throttled"`
}

func (c counts) total() int64 {
	var n int64
	for _, v := range c.Calls {
		n += v
	}
	return n
}

func (c counts) throttled() int64 {
	var n int64
	for _, v := range c.Throttled {
		n += v
	}
	return n
}

func (e *emulator) calls() (counts, error) {
	var c counts
	err := e.control(http.MethodGet, "calls", nil, &c)
	return c, err
}

// Operation names as the emulator counts them.
const (
	opGet      = "secretsmanager:GetSecretValue"
	opBatch    = "secretsmanager:BatchGetSecretValue"
	opDescribe = "secretsmanager:DescribeSecret"
	opParams   = "ssm:GetParameters"
	opParam    = "ssm:GetParameter"
	opSession  = "rolesanywhere:CreateSession"
)
