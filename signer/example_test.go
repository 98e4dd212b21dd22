package signer_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/signer"
)

// Credentials from a certificate and key, used by an AWS SDK client. The
// in-process emulator stands in for IAM Roles Anywhere and STS; against
// AWS, leave out Endpoint, CABundle and the client's BaseEndpoint.
func Example() {
	ctx := context.Background()
	emu := startEmulator()
	defer emu.Close()

	id, err := signer.LoadFiles(signer.LoadOptions{
		Certificate: "../testdata/signer/p256.pem",
		PrivateKey:  "../testdata/signer/p256.key",
	})
	if err != nil {
		log.Fatal(err)
	}
	client, err := signer.NewClient(id, signer.Config{
		TrustAnchorARN: emu.anchor,
		ProfileARN:     emu.profile,
		RoleARN:        emu.role,
		Endpoint:       emu.URL(),
		CABundle:       emu.CAPEM(),
	})
	if err != nil {
		log.Fatal(err)
	}
	cfg := aws.Config{
		Region:      client.Region(),
		Credentials: signer.NewProvider(client, signer.ProviderOptions{}),
		HTTPClient:  emu.httpClient(),
	}
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(emu.URL()) }).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		log.Fatal(err)
	}
	arn := aws.ToString(out.Arn)
	fmt.Println(arn[strings.LastIndex(arn, ":")+1 : strings.LastIndex(arn, "/")])
	// Output: assumed-role/reader
}

// With the SDK's shared configuration (region, endpoints, retries), put the
// provider in the loaded aws.Config. Not config.WithCredentialsProvider:
// that wraps it in a second cache, which hands out credentials up to their
// last second and which the provider's Invalidate does not reach.
func Example_loadDefaultConfig() {
	ctx := context.Background()
	id, err := signer.LoadFiles(signer.LoadOptions{Certificate: "leaf.pem", PrivateKey: "leaf.key"})
	if err != nil {
		log.Fatal(err)
	}
	client, err := signer.NewClient(id, signer.Config{
		TrustAnchorARN: "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/TA",
		ProfileARN:     "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/PROFILE",
		RoleARN:        "arn:aws:iam::111122223333:role/app",
	})
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	cfg.Credentials = signer.NewProvider(client, signer.ProviderOptions{})
	_ = sts.NewFromConfig(cfg)
}

// emulator is internal/awsdev with a trust anchor for the fixtures' root
// CA, a role "reader" and a profile.
type emulator struct {
	*awsdev.Server
	anchor, profile, role string
}

func startEmulator() *emulator {
	srv, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		log.Fatal(err)
	}
	pem, err := os.ReadFile("../testdata/signer/root.pem")
	if err != nil {
		log.Fatal(err)
	}
	root, err := signer.ParseCertificate(pem)
	if err != nil {
		log.Fatal(err)
	}
	e := &emulator{Server: srv}
	e.role = srv.CreateRole("reader", awsdev.RoleOptions{Policy: awsdev.AllowAll})
	e.anchor = srv.CreateTrustAnchor(root, awsdev.TrustAnchorOptions{})
	e.profile = srv.CreateProfile(awsdev.ProfileOptions{RoleARNs: []string{e.role}})
	return e
}

// httpClient trusts the emulator's CA.
func (e *emulator) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CAPEM())
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
