package main

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/rolesenv/rolesenv/internal/bench/floor"
	"github.com/rolesenv/rolesenv/signer"
)

// The in-process clients: the floor (the round trips no client can avoid,
// package floor) and the naive baseline (what a simple tool does). Both use the AWS SDK
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
func (b *bench) raClientFor(id signer.IdentitySource, c creds, t trust) (*signer.Client, error) {
	if c != credRA {
		return nil, nil
	}
	ra, _, _ := b.urls(t)
	return signer.NewClient(id, signer.Config{
		TrustAnchorARN: b.emu.TrustAnchorARN,
		ProfileARN:     b.emu.ProfileARN,
		RoleARN:        b.emu.RoleARN,
		Endpoint:       ra,
		CABundle:       b.emu.caPEM,
	})
}

func (b *bench) identity() (*signer.FileIdentity, error) {
	return signer.NewFileIdentity(signer.LoadOptions{Certificate: b.emu.CertFile, PrivateKey: b.emu.KeyFile}, nil, nil)
}

func (b *bench) staticCreds() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(b.emu.AccessKeyID, b.emu.SecretKey, "")
}

// floor measures once what cannot be avoided (package floor), in this
// process, through the proxies of trust t.
func (b *bench) floor(ctx context.Context, id signer.IdentitySource, c creds, t trust, n, m int) (time.Duration, error) {
	ra, err := b.raClientFor(id, c, t)
	if err != nil {
		return 0, err
	}
	_, sm, ssm := b.urls(t)
	return floor.Run(ctx, floor.Options{SecretsManagerURL: sm, ParameterStoreURL: ssm, Roots: b.emu.pool,
		Credentials: b.staticCreds(), Session: ra, Secrets: n, Params: m})
}

// baseline measures once what a naive tool does: credentials, then one
// GetSecretValue (or GetParameter) per variable, one after the other, on
// the SDK's default client (one connection, reused).
func (b *bench) baseline(ctx context.Context, id signer.IdentitySource, c creds, t trust, n, m int) (time.Duration, error) {
	hc := b.sdkHTTPClient()
	defer hc.GetTransport().CloseIdleConnections()
	ra, err := b.raClientFor(id, c, t)
	_, smURL, ssmURL := b.urls(t)
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
		BaseEndpoint: aws.String(smURL), HTTPClient: hc})
	for i := range n {
		if _, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName(i))}); err != nil {
			return 0, err
		}
	}
	if m > 0 {
		ps := ssm.New(ssm.Options{Region: "us-east-1", Credentials: provider,
			BaseEndpoint: aws.String(ssmURL), HTTPClient: hc})
		for i := range m {
			if _, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(paramName(i)), WithDecryption: aws.Bool(true)}); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}
