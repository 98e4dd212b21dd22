// Command floorcmd is the benchmarks' floor as a program of its own: a
// Go process that starts, does the floor's fetch round once (package
// floor) and prints how long the round took, in nanoseconds. The harness
// builds it once per run and takes its CPU time (user + system) from the
// process's resource usage: the floor's CPU, a Go process's start
// included. Static credentials come from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY; -cert and the ARNs ask for CreateSession instead.
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rolesenv/rolesenv/internal/bench/floor"
	"github.com/rolesenv/rolesenv/signer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floorcmd:", err)
		os.Exit(1)
	}
}

func run() error {
	var o floor.Options
	var ca, ra, cert, key, anchor, profile, role string
	flag.StringVar(&o.SecretsManagerURL, "sm", "", "Secrets Manager base URL")
	flag.StringVar(&o.ParameterStoreURL, "ssm", "", "Parameter Store base URL")
	flag.IntVar(&o.Secrets, "secrets", 0, "secrets to fetch")
	flag.IntVar(&o.Params, "params", 0, "parameters to fetch")
	flag.StringVar(&ca, "ca", "", "PEM file of the CA the endpoints' certificates chain to")
	flag.StringVar(&ra, "ra", "", "Roles Anywhere base URL (with -cert: CreateSession)")
	flag.StringVar(&cert, "cert", "", "certificate file for CreateSession")
	flag.StringVar(&key, "key", "", "private key file for CreateSession")
	flag.StringVar(&anchor, "trust-anchor", "", "trust anchor ARN")
	flag.StringVar(&profile, "profile", "", "profile ARN")
	flag.StringVar(&role, "role", "", "role ARN")
	flag.Parse()
	var caPEM []byte
	if ca != "" {
		var err error
		if caPEM, err = os.ReadFile(ca); err != nil {
			return err
		}
		o.Roots = x509.NewCertPool()
		o.Roots.AppendCertsFromPEM(caPEM)
	}
	o.Credentials = credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), "")
	if cert != "" {
		id, err := signer.NewFileIdentity(signer.LoadOptions{Certificate: cert, PrivateKey: key}, nil, nil)
		if err != nil {
			return err
		}
		if o.Session, err = signer.NewClient(id, signer.Config{TrustAnchorARN: anchor, ProfileARN: profile,
			RoleARN: role, Endpoint: ra, CABundle: caPEM}); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := floor.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Println(d.Nanoseconds())
	return nil
}
