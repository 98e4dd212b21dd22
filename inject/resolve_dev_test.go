package inject

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rolesenv/rolesenv/internal/awsdev"
)

// TestCallCounts: 45 distinct secrets used by 120 variables (whole
// values, JSON keys, inline references, repeats) and 12 parameters cost
// the minimum number of calls of the default strategy: BatchGetSecretValue
// 20 ids a call (45 is more than one parallel round of GetSecretValue) and
// GetParameters 10 names a call: 3 + 2 calls, never one per variable.
func TestCallCounts(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	var src strings.Builder
	for i := range 45 {
		must[string](t)(s.CreateSecret(fmt.Sprintf("count/s%02d", i), fmt.Sprintf(`{"user":"u%d","password":"p%d"}`, i, i)))
	}
	for i := range 12 {
		must[int64](t)(s.PutParameter(fmt.Sprintf("/count/p%02d", i), "String", fmt.Sprint(i)))
	}
	vars := 0
	for i := range 120 {
		sec := fmt.Sprintf("count/s%02d", i%45)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&src, "V%03d=sm://%s\n", i, sec)
		case 1:
			fmt.Fprintf(&src, "V%03d=sm://%s#password\n", i, sec)
		case 2:
			fmt.Fprintf(&src, "V%03d=u={{ sm://%s#user }};p={{ sm://%s#password | urlquery }}\n", i, sec, sec)
		case 3:
			fmt.Fprintf(&src, "V%03d={{resolve:secretsmanager:%s:SecretString:user}}-{{ ssm:///count/p%02d }}\n", i, sec, i%12)
		}
		vars++
	}
	for i := range 12 {
		fmt.Fprintf(&src, "P%02d=ssm:///count/p%02d\n", i, i)
	}
	tm, err := Parse([]File{{Name: "count.env", Data: []byte(src.String())}}, Options{CleanEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tm.Fetches()); n != 45+12 {
		t.Fatalf("%d distinct fetches, want 57", n)
	}
	s.ResetCalls()
	env, _, err := (&Resolver{Config: cfg}).Resolve(context.Background(), tm)
	if err != nil {
		t.Fatal(err)
	}
	if env.Len() != vars+12 {
		t.Fatalf("%d variables, want %d", env.Len(), vars+12)
	}
	want := map[string]int64{"secretsmanager:BatchGetSecretValue": 3, "ssm:GetParameters": 2}
	got := s.CallCounts()
	for op, n := range got {
		if n != want[op] {
			t.Errorf("%s: %d calls, want %d", op, n, want[op])
		}
	}
	for op, n := range want {
		if got[op] != n {
			t.Errorf("%s: %d calls, want %d", op, got[op], n)
		}
	}
	v, _ := env.Lookup("V002")
	if v.Reveal() != "u=u2;p=p2" {
		t.Errorf("V002 = %q", v.Reveal())
	}

	// The same with GetSecretValue only: one call per distinct secret.
	s.ResetCalls()
	if _, _, err := (&Resolver{Config: cfg, Batch: BatchNever}).Resolve(context.Background(), tm); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls("secretsmanager:GetSecretValue"); n != 45 {
		t.Errorf("BatchNever: %d GetSecretValue calls, want 45", n)
	}
}

// TestBatchFallback: a policy without secretsmanager:BatchGetSecretValue
// still resolves everything, through GetSecretValue, after one refused
// batch call; and a throttled batch falls back at once.
func TestBatchFallback(t *testing.T) {
	s, cfg := startDev(t, awsdev.Policy{Allow: []awsdev.Rule{{Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{"*"}}}})
	var src strings.Builder
	for i := range 25 {
		must[string](t)(s.CreateSecret(fmt.Sprintf("fb/s%02d", i), fmt.Sprint(i)))
		fmt.Fprintf(&src, "S%02d=sm://fb/s%02d\n", i, i)
	}
	tm, err := Parse([]File{{Name: "fb.env", Data: []byte(src.String())}}, Options{CleanEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Config: cfg, Parallel: 4}
	env, _, err := r.Resolve(context.Background(), tm)
	if err != nil {
		t.Fatal(err)
	}
	if env.Len() != 25 {
		t.Fatalf("%d variables", env.Len())
	}
	batch, get := s.Calls("secretsmanager:BatchGetSecretValue"), s.Calls("secretsmanager:GetSecretValue")
	// Two batches may be in flight before the first denial is known.
	if batch < 1 || batch > 2 || get != 25 {
		t.Errorf("%d batch calls and %d GetSecretValue calls, want 1 or 2 and 25", batch, get)
	}
	// The resolver remembers: the next resolution does not try again.
	s.ResetCalls()
	if _, _, err := r.Resolve(context.Background(), tm); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls("secretsmanager:BatchGetSecretValue"); n != 0 {
		t.Errorf("%d batch calls after the denial", n)
	}

	// Throttled batch: GetSecretValue at once, no retry of the batch.
	if err := s.SetUserPolicy("app", awsdev.AllowAll); err != nil {
		t.Fatal(err)
	}
	s.ResetCalls()
	s.FailNext("secretsmanager:BatchGetSecretValue", 2, awsdev.FaultThrottle)
	r = &Resolver{Config: cfg, Parallel: 4}
	if _, _, err := r.Resolve(context.Background(), tm); err != nil {
		t.Fatal(err)
	}
	batch, get = s.Calls("secretsmanager:BatchGetSecretValue"), s.Calls("secretsmanager:GetSecretValue")
	if batch != 2 || get != 25 {
		t.Errorf("throttled: %d batch calls and %d GetSecretValue calls, want 2 and 25", batch, get)
	}
}

// TestThrottledUntilDeadline: at start-up (a context with a deadline) a
// throttled call is tried again after the SDK's attempts, until it
// succeeds; without a deadline the SDK's attempts are all there is.
func TestThrottledUntilDeadline(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	must[string](t)(s.CreateSecret("throttle/a", "a-value"))
	must[int64](t)(s.PutParameter("/throttle/p", "String", "p-value"))
	tm, err := Parse([]File{{Name: "t.env", Data: []byte("A=sm://throttle/a\nP=ssm:///throttle/p\n")}}, Options{CleanEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	const throttled = 5 // more than the SDK's 3 attempts
	s.FailNext("secretsmanager:GetSecretValue", throttled, awsdev.FaultThrottle)
	s.FailNext("ssm:GetParameters", throttled, awsdev.FaultThrottle)
	s.ResetCalls()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, _, err := (&Resolver{Config: cfg}).Resolve(ctx, tm)
	if err != nil {
		t.Fatalf("throttled calls within the deadline: %v", err)
	}
	if v, _ := env.Lookup("A"); v.Reveal() != "a-value" {
		t.Errorf("A = %q", v.Reveal())
	}
	for _, op := range []string{"secretsmanager:GetSecretValue", "ssm:GetParameters"} {
		if n := s.Calls(op); n != throttled+1 {
			t.Errorf("%s: %d calls, want %d (every throttled one, then the answer)", op, n, throttled+1)
		}
	}

	s.FailNext("secretsmanager:GetSecretValue", throttled, awsdev.FaultThrottle)
	s.FailNext("ssm:GetParameters", throttled, awsdev.FaultThrottle)
	_, _, err = (&Resolver{Config: cfg}).Resolve(context.Background(), tm)
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("without a deadline: %v, want both references throttled", err)
	}
	for _, e := range es {
		var re *ResolveError
		if !errors.As(e, &re) || !re.Unavailable() || re.Code != "ThrottlingException" {
			t.Errorf("%v: want unavailable, ThrottlingException", e)
		}
	}
}
