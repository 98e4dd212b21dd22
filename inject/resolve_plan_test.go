package inject

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/awsdev"
)

// TestPlanMatchesCalls: what Plan says a first round sends is what the
// emulator receives when Resolve runs, for each batching case: a few
// AWSCURRENT secrets one by one, many in batches, secrets pinned to a
// stage, parameters 10 names a call with two selectors of one name
// apart, and the forced modes.
func TestPlanMatchesCalls(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	for i := range 45 {
		id := fmt.Sprintf("plan/s%02d", i)
		must[string](t)(s.CreateSecret(id, "v1"))
		must[string](t)(s.PutSecretValue(id, "v2"))
	}
	for i := range 12 {
		must[int64](t)(s.PutParameter(fmt.Sprintf("/plan/p%02d", i), "String", "1"))
		must[int64](t)(s.PutParameter(fmt.Sprintf("/plan/p%02d", i), "String", "2"))
	}
	lines := func(n int, format string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, format, i, i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name  string
		batch BatchMode
		src   string
		want  map[string]int64 // calls by operation
	}{
		{"5 secrets one by one", BatchAuto, lines(5, "S%02d=sm://plan/s%02d\n"),
			map[string]int64{"GetSecretValue": 5}},
		{"45 secrets in 3 batches", BatchAuto, lines(45, "S%02d=sm://plan/s%02d\n"),
			map[string]int64{"BatchGetSecretValue": 3}},
		{"pinned to a stage", BatchAuto, lines(3, "S%02d=sm://plan/s%02d?stage=AWSPREVIOUS\n") + lines(12, "C%02d=sm://plan/s%02d\n"),
			map[string]int64{"GetSecretValue": 3, "BatchGetSecretValue": 1}},
		{"12 parameters, one at two versions", BatchAuto, lines(12, "P%02d=ssm:///plan/p%02d\n") + "Q=ssm:///plan/p00?version=1\n",
			map[string]int64{"GetParameters": 2}},
		{"one parameter at three selectors", BatchAuto, "P=ssm:///plan/p00\nQ=ssm:///plan/p00?version=1\nR=ssm:///plan/p00?version=2\n",
			map[string]int64{"GetParameters": 3}},
		{"batches forced", BatchAlways, lines(3, "S%02d=sm://plan/s%02d\n"),
			map[string]int64{"BatchGetSecretValue": 1}},
		{"batches refused", BatchNever, lines(25, "S%02d=sm://plan/s%02d\n"),
			map[string]int64{"GetSecretValue": 25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := Parse([]File{{Name: "plan.env", Data: []byte(tc.src)}}, Options{CleanEnv: true})
			if err != nil {
				t.Fatal(err)
			}
			r := &Resolver{Config: cfg, Batch: tc.batch}
			planned := map[string]int64{}
			p := r.Plan(tm.Fetches())
			for _, c := range p.Calls {
				if c.Region != cfg.Region {
					t.Errorf("call %+v: region %q, want %q", c, c.Region, cfg.Region)
				}
				planned[c.Operation] += int64(c.Requests)
			}
			if p.InFlight != DefaultParallel {
				t.Errorf("in flight %d, want %d", p.InFlight, DefaultParallel)
			}
			if !maps.Equal(planned, tc.want) {
				t.Errorf("plan %v, want %v", planned, tc.want)
			}
			s.ResetCalls()
			if _, _, err := r.Resolve(context.Background(), tm); err != nil {
				t.Fatal(err)
			}
			sent := map[string]int64{}
			for op, n := range calls(s) {
				_, name, _ := strings.Cut(op, ":")
				sent[name] = n
			}
			if !maps.Equal(sent, planned) {
				t.Errorf("Resolve sent %v, the plan said %v", sent, planned)
			}
		})
	}
}

// TestPlanRegions: a fetch of an ARN in another region is planned there,
// one without any region is in no call, and Parallel bounds the plan's
// requests in flight.
func TestPlanRegions(t *testing.T) {
	r := &Resolver{Parallel: 4}
	r.Config.Region = "us-east-1"
	p := r.Plan([]Fetch{
		{Service: SecretsManager, ID: "a", Stage: currentStage},
		{Service: SecretsManager, ID: "a", Stage: currentStage}, // once
		{Service: SecretsManager, Region: "eu-west-1", ID: "arn:aws:secretsmanager:eu-west-1:111122223333:secret:b", Stage: currentStage},
		{Service: ParameterStore, ID: "/c"},
	})
	want := []Call{
		{Service: SecretsManager, Region: "us-east-1", Operation: "GetSecretValue", Requests: 1},
		{Service: SecretsManager, Region: "eu-west-1", Operation: "GetSecretValue", Requests: 1},
		{Service: ParameterStore, Region: "us-east-1", Operation: "GetParameters", Requests: 1},
	}
	if fmt.Sprint(p.Calls) != fmt.Sprint(want) || p.InFlight != 4 {
		t.Errorf("plan %+v, want %+v in flight 4", p, want)
	}
	r.Config.Region = ""
	if p := r.Plan([]Fetch{{Service: SecretsManager, ID: "a", Stage: currentStage}}); len(p.Calls) != 0 {
		t.Errorf("a fetch without a region was planned: %+v", p.Calls)
	}
}
