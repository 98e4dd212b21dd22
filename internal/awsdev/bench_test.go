package awsdev

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// BenchmarkGetSecretValue measures one signed, verified and authorised
// GetSecretValue over HTTPS with keep-alive: the emulator's own cost, which
// benchmarks of rolesenv add to whatever latency they inject.
func BenchmarkGetSecretValue(b *testing.B) {
	testenv.IsolateAWS(b)
	s, err := Start(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateSecret("bench", "value"); err != nil {
		b.Fatal(err)
	}
	id, secret := s.CreateUser("admin", AllowAll)
	cfg := endpointConfig(b, s.URL(), s.CAPEM(), id, secret, "")
	c := secretsmanager.NewFromConfig(cfg)
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("bench")}
	for b.Loop() {
		if _, err := c.GetSecretValue(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
