package inject

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/awsdev"
)

// BenchmarkResolve measures start-up resolution of n AWSCURRENT secrets
// against the emulator with added latency per answer, for
// BatchGetSecretValue (20 a call) and parallel GetSecretValue. Each
// iteration uses a new HTTP client, as a starting process would. The
// package documentation records the numbers and the choice they support.
func BenchmarkResolve(b *testing.B) {
	s, cfg := startDev(b, awsdev.AllowAll)
	for _, n := range []int{1, 10, 50, 200} {
		var src strings.Builder
		for i := range n {
			name := fmt.Sprintf("bench/s%03d", i)
			if _, err := s.CreateSecret(name, "v"); err != nil && !strings.Contains(err.Error(), "exists") {
				b.Fatal(err)
			}
			fmt.Fprintf(&src, "S%03d=sm://%s\n", i, name)
		}
		tm, err := Parse([]File{{"bench.env", []byte(src.String())}}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, lat := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond} {
			for _, mode := range []struct {
				name string
				m    BatchMode
			}{{"batch", BatchAlways}, {"get", BatchNever}, {"auto", BatchAuto}} {
				b.Run(fmt.Sprintf("latency=%s/n=%d/%s", lat, n, mode.name), func(b *testing.B) {
					s.SetLatency(lat)
					defer s.SetLatency(0)
					s.ResetCalls()
					for b.Loop() {
						c := cfg.Copy()
						c.HTTPClient = endpointConfig(b, s.URL(), s.CAPEM(), "", "").HTTPClient
						r := &Resolver{Config: c, Batch: mode.m}
						if _, _, err := r.Resolve(context.Background(), tm); err != nil {
							b.Fatal(err)
						}
					}
					calls := s.Calls("secretsmanager:GetSecretValue") + s.Calls("secretsmanager:BatchGetSecretValue")
					b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
				})
			}
		}
	}
}

// BenchmarkFleetStart starts a fleet of processes at once against the
// emulator with the documented account quotas (BatchGetSecretValue 100
// TPS, GetSecretValue 10,000 TPS), each resolving 20 secrets with its own
// connections: throttled batches fall back to GetSecretValue at once, so
// every process starts, and the slowest start is reported.
func BenchmarkFleetStart(b *testing.B) {
	const fleet, secrets = 150, 20
	s, cfg := startDev(b, awsdev.AllowAll)
	var src strings.Builder
	for i := range secrets {
		name := fmt.Sprintf("fleet/s%02d", i)
		if _, err := s.CreateSecret(name, "v"); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&src, "S%02d=sm://%s\n", i, name)
	}
	tm, err := Parse([]File{{"fleet.env", []byte(src.String())}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.SetAWSQuotas(0)
	defer s.SetQuota("secretsmanager:BatchGetSecretValue", 0)
	defer s.SetQuota("secretsmanager:GetSecretValue", 0)
	for _, mode := range []struct {
		name string
		m    BatchMode
	}{{"auto", BatchAuto}, {"get", BatchNever}} {
		b.Run(mode.name, func(b *testing.B) {
			s.ResetCalls()
			var slowest time.Duration
			for b.Loop() {
				var wg sync.WaitGroup
				var mu sync.Mutex
				for range fleet {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := cfg.Copy()
						c.HTTPClient = endpointConfig(b, s.URL(), s.CAPEM(), "", "").HTTPClient
						start := time.Now()
						if _, _, err := (&Resolver{Config: c, Batch: mode.m}).Resolve(context.Background(), tm); err != nil {
							b.Error(err)
						}
						mu.Lock()
						slowest = max(slowest, time.Since(start))
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(slowest.Milliseconds()), "slowest-ms")
			b.ReportMetric(float64(s.Throttled("secretsmanager:BatchGetSecretValue"))/float64(b.N), "batch-throttled/op")
			b.ReportMetric(float64(s.Calls("secretsmanager:BatchGetSecretValue")+s.Calls("secretsmanager:GetSecretValue"))/float64(b.N), "calls/op")
		})
	}
}
