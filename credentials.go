package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// rolesAnywhereProvider builds the refreshing Roles Anywhere credentials
// provider from the credential flags.
func (a *app) rolesAnywhereProvider(ctx context.Context, cf *credFlags, cfg aws.Config) (aws.CredentialsProvider, error) {
	return nil, notLanded("Roles Anywhere credentials", 3)
}
