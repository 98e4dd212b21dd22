//go:build deps

// This file pins modules that packages will import while they are written; removed once all are in use.
package main

import (
	_ "github.com/Shopify/toxiproxy/v2"
	_ "github.com/Shopify/toxiproxy/v2/client"
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	_ "github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	_ "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	_ "github.com/aws/aws-sdk-go-v2/service/ssm"
	_ "github.com/aws/aws-sdk-go-v2/service/sts"
	_ "github.com/aws/smithy-go"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/creack/pty"
	_ "github.com/joho/godotenv"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/spf13/pflag"
	_ "golang.org/x/crypto/scrypt"
	_ "golang.org/x/sys/unix"
	_ "software.sslmate.com/src/go-pkcs12"
)
