package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/rolesenv/rolesenv/signer"
)

// The in-process clients: the floor (the round trips no client can avoid)
// and the naive baseline (what a simple tool does). Both use the AWS SDK
// for Go, like rolesenv, so the CPU cost of signing and parsing is the same
// on every side.

// sdkHTTPClient is the SDK's default HTTP client trusting the emulator's
// CA: what rolesenv gets from AWS_CA_BUNDLE.
func (b *bench) sdkHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		tr.TLSClientConfig.RootCAs = b.emu.pool
	})
}

// raClientFor is a fresh CreateSession client (its own connection) with
// Roles Anywhere credentials, nil with static ones.
func (b *bench) raClientFor(id signer.IdentitySource, c creds) (*signer.Client, error) {
	if c != credRA {
		return nil, nil
	}
	return signer.NewClient(id, signer.Config{
		TrustAnchorARN: b.emu.TrustAnchorARN,
		ProfileARN:     b.emu.ProfileARN,
		RoleARN:        b.emu.RoleARN,
		Endpoint:       b.proxies.ra.url,
		CABundle:       b.emu.caPEM,
	})
}

func (b *bench) identity() (*signer.FileIdentity, error) {
	return signer.NewFileIdentity(signer.LoadOptions{Certificate: b.emu.CertFile, PrivateKey: b.emu.KeyFile}, nil, nil)
}

func (b *bench) staticCreds() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(b.emu.AccessKeyID, b.emu.SecretKey, "")
}

// oneConn is an HTTP client whose only connection is c, dialled before.
func oneConn(c net.Conn) *http.Client {
	var once sync.Once
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
			var out net.Conn
			once.Do(func() { out = c })
			if out == nil {
				return nil, errors.New("the floor client has one connection per call")
			}
			return out, nil
		},
	}}
}

func (b *bench) dialTLS(ctx context.Context, rawURL string) (net.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	d := &tls.Dialer{Config: &tls.Config{RootCAs: b.emu.pool, NextProtos: []string{"http/1.1"}, ServerName: u.Hostname()}}
	return d.DialContext(ctx, "tcp", u.Host)
}

// floorCalls are the calls of one fetch round: BatchGetSecretValue 20 ids
// a call and GetParameters 10 names a call, all at once.
func floorCalls(n, m int) (batches, params int) {
	return (n + 19) / 20, (m + 9) / 10
}

// floor measures once what cannot be avoided: with Roles Anywhere, a new
// connection and CreateSession; a new connection per call of one fetch
// round (dialled while CreateSession is in flight); and that round, every
// call at once. Nothing else: no process start, no configuration, no env
// file.
func (b *bench) floor(ctx context.Context, id signer.IdentitySource, c creds, n, m int) (time.Duration, error) {
	nb, np := floorCalls(n, m)
	ra, err := b.raClientFor(id, c)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	conns := make([]net.Conn, nb+np)
	errs := make([]error, nb+np+1)
	var provider aws.CredentialsProvider = b.staticCreds()
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			u := b.proxies.sm.url
			if i >= nb {
				u = b.proxies.ssm.url
			}
			conns[i], errs[i] = b.dialTLS(ctx, u)
		})
	}
	if ra != nil {
		wg.Go(func() {
			cr, err := ra.CreateSession(ctx)
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
			hc := oneConn(conns[i])
			if i < nb {
				ids := make([]string, 0, 20)
				for j := i * 20; j < min(n, (i+1)*20); j++ {
					ids = append(ids, secretName(j))
				}
				cl := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", Credentials: provider,
					BaseEndpoint: aws.String(b.proxies.sm.url), HTTPClient: hc, RetryMaxAttempts: 1})
				out, err := cl.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids})
				if err == nil {
					got[i] = len(out.SecretValues) - len(ids)
				}
				errs[i] = err
				return
			}
			k := i - nb
			names := make([]string, 0, 10)
			for j := k * 10; j < min(m, (k+1)*10); j++ {
				names = append(names, paramName(j))
			}
			cl := ssm.New(ssm.Options{Region: "us-east-1", Credentials: provider,
				BaseEndpoint: aws.String(b.proxies.ssm.url), HTTPClient: hc, RetryMaxAttempts: 1})
			out, err := cl.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(true)})
			if err == nil {
				got[i] = len(out.Parameters) - len(names)
			}
			errs[i] = err
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

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		if c != nil {
			_ = c.Close()
		}
	}
}

// baseline measures once what a naive tool does: credentials, then one
// GetSecretValue (or GetParameter) per variable, one after the other, on
// the SDK's default client (one connection, reused).
func (b *bench) baseline(ctx context.Context, id signer.IdentitySource, c creds, n, m int) (time.Duration, error) {
	hc := b.sdkHTTPClient()
	defer hc.GetTransport().CloseIdleConnections()
	ra, err := b.raClientFor(id, c)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var provider aws.CredentialsProvider = b.staticCreds()
	if ra != nil {
		cr, err := ra.CreateSession(ctx)
		if err != nil {
			return 0, err
		}
		provider = credentials.StaticCredentialsProvider{Value: cr.AWS()}
	}
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", Credentials: provider,
		BaseEndpoint: aws.String(b.proxies.sm.url), HTTPClient: hc})
	for i := range n {
		if _, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName(i))}); err != nil {
			return 0, err
		}
	}
	if m > 0 {
		ps := ssm.New(ssm.Options{Region: "us-east-1", Credentials: provider,
			BaseEndpoint: aws.String(b.proxies.ssm.url), HTTPClient: hc})
		for i := range m {
			if _, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(paramName(i)), WithDecryption: aws.Bool(true)}); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}
