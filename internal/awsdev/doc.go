// Package awsdev is a local, in-memory AWS emulator for rolesenv's tests,
// benchmarks and the `rolesenv dev` command: IAM Roles Anywhere
// CreateSession, Secrets Manager, SSM Parameter Store and STS
// GetCallerIdentity, on one loopback listener, over HTTPS with its own CA or
// plain HTTP.
package awsdev
