// Package floor is the benchmarks' floor: what no client can avoid to
// fetch a template's secrets and parameters, and nothing else. With Roles
// Anywhere, CreateSession on a new connection while the connections of
// the fetch round are dialled; one new connection per call of the round;
// the round itself, every call at once (BatchGetSecretValue 20 ids a
// call, GetParameters 10 names a call). No configuration, no env file.
//
// The harness runs it in its own process for the floor's time, and the
// floor program (internal/bench/floorcmd) runs it in a fresh process for
// the floor's CPU time, start of a Go process included.
package floor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/rolesenv/rolesenv/signer"
)

// SecretName and ParamName are the names the emulator is seeded with.
func SecretName(i int) string { return fmt.Sprintf("bench/s%03d", i) }
func ParamName(i int) string  { return fmt.Sprintf("/bench/p%02d", i) }

// Options say where the services are and what to fetch.
type Options struct {
	// Base URLs: https dials TLS trusting Roots alone, http plain TCP.
	SecretsManagerURL, ParameterStoreURL string
	Roots                                *x509.CertPool
	// Credentials sign the round, unless Session is set: then
	// CreateSession's do.
	Credentials aws.CredentialsProvider
	Session     *signer.Client
	// Secrets and Params are how many of each to fetch.
	Secrets, Params int
}

// calls are the calls of one fetch round.
func calls(n, m int) (batches, params int) {
	return (n + 19) / 20, (m + 9) / 10
}

// Run measures the floor once: from the first dial to the last answer.
func Run(ctx context.Context, o Options) (time.Duration, error) {
	nb, np := calls(o.Secrets, o.Params)
	start := time.Now()
	conns := make([]net.Conn, nb+np)
	errs := make([]error, nb+np+1)
	provider := o.Credentials
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			u := o.SecretsManagerURL
			if i >= nb {
				u = o.ParameterStoreURL
			}
			conns[i], errs[i] = dial(ctx, u, o.Roots)
		})
	}
	if o.Session != nil {
		wg.Go(func() {
			cr, err := o.Session.CreateSession(ctx)
			if err != nil {
				errs[nb+np] = err
				return
			}
			provider = credentials.StaticCredentialsProvider{Value: cr.AWS()}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(conns)
		return 0, err
	}
	got := make([]int, nb+np)
	for i := range conns {
		wg.Go(func() {
			if i < nb {
				got[i], errs[i] = o.batch(ctx, provider, conns[i], i)
			} else {
				got[i], errs[i] = o.params(ctx, provider, conns[i], i-nb)
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	closeAll(conns)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	for _, g := range got {
		if g != 0 {
			return 0, fmt.Errorf("the floor client got %d values too few", -g)
		}
	}
	return d, nil
}

// batch fetches the k-th 20 secrets; it returns how many it got less
// than it asked for (0, or negative).
func (o Options) batch(ctx context.Context, p aws.CredentialsProvider, c net.Conn, k int) (int, error) {
	ids := make([]string, 0, 20)
	for j := k * 20; j < min(o.Secrets, (k+1)*20); j++ {
		ids = append(ids, SecretName(j))
	}
	cl := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", Credentials: p,
		BaseEndpoint: aws.String(o.SecretsManagerURL), HTTPClient: oneConn(c), RetryMaxAttempts: 1})
	out, err := cl.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids})
	if err != nil {
		return 0, err
	}
	return len(out.SecretValues) - len(ids), nil
}

// params fetches the k-th 10 parameters, as batch does secrets.
func (o Options) params(ctx context.Context, p aws.CredentialsProvider, c net.Conn, k int) (int, error) {
	names := make([]string, 0, 10)
	for j := k * 10; j < min(o.Params, (k+1)*10); j++ {
		names = append(names, ParamName(j))
	}
	cl := ssm.New(ssm.Options{Region: "us-east-1", Credentials: p,
		BaseEndpoint: aws.String(o.ParameterStoreURL), HTTPClient: oneConn(c), RetryMaxAttempts: 1})
	out, err := cl.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(true)})
	if err != nil {
		return 0, err
	}
	return len(out.Parameters) - len(names), nil
}

// dial opens a connection to the host of rawURL: TLS trusting roots for
// https, plain TCP for http.
func dial(ctx context.Context, rawURL string, roots *x509.CertPool) (net.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "http" {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", u.Host)
	}
	d := &tls.Dialer{Config: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}, ServerName: u.Hostname()}}
	return d.DialContext(ctx, "tcp", u.Host)
}

// oneConn is an HTTP client whose only connection is c, dialled before.
func oneConn(c net.Conn) *http.Client {
	var once sync.Once
	take := func(context.Context, string, string) (net.Conn, error) {
		var out net.Conn
		once.Do(func() { out = c })
		if out == nil {
			return nil, errors.New("the floor client has one connection per call")
		}
		return out, nil
	}
	return &http.Client{Transport: &http.Transport{Proxy: nil, DialTLSContext: take, DialContext: take}}
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		if c != nil {
			_ = c.Close()
		}
	}
}
