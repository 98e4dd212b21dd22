package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// awsConfig builds the SDK configuration every AWS client of rolesenv uses.
//
// Region: --region (or ROLESENV_REGION), then the SDK's own (AWS_REGION,
// AWS_DEFAULT_REGION, the profile), then the trust anchor ARN's region.
// Endpoints, AWS_CA_BUNDLE and proxies follow the SDK's rules.
//
// Credentials: Roles Anywhere when any of its settings is given, otherwise
// the SDK's default chain. Either way they are fetched lazily, on the first
// request that needs them: a run with nothing to resolve asks for none.
func (a *app) awsConfig(ctx context.Context, cf *credFlags) (aws.Config, error) {
	if cf.rolesAnywhere() && a.rolesAnywhereTLS(cf) {
		// CreateSession comes first: its handshake verifies against the
		// system's roots while the configuration loads.
		a.warmRoots("rolesanywhere")
	}
	var opts []func(*config.LoadOptions) error
	if cf.region != "" {
		opts = append(opts, config.WithRegion(cf.region))
	}
	if o := a.apiCallOptions(); o != nil {
		opts = append(opts, config.WithAPIOptions(o))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, &configError{msg: fmt.Sprintf("failed to load AWS configuration: %v", err)}
	}
	if cfg.Region == "" && cf.trustAnchorARN != "" {
		cfg.Region = arnRegion(cf.trustAnchorARN)
	}
	if cf.rolesAnywhere() {
		p, err := a.rolesAnywhereProvider(ctx, cf, cfg)
		if err != nil {
			return aws.Config{}, err
		}
		cfg.Credentials = p
	} else {
		cfg.Credentials = a.withCredentialLog(cfg.Credentials)
	}
	a.instrumentAWS(&cfg, cf.rolesAnywhere())
	return cfg, nil
}

// arnRegion returns the region field of an ARN, or "".
func arnRegion(arn string) string { return arnField(arn, 3) }

// arnAccount returns the account field of an ARN, or "".
func arnAccount(arn string) string { return arnField(arn, 4) }

// arnField returns field i of an ARN
// (arn:partition:service:region:account:resource), or "".
func arnField(arn string, i int) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return ""
	}
	return parts[i]
}
