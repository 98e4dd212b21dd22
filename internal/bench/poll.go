package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/rolesenv/rolesenv/inject"
)

// pollRow is the cost of the checks of one template.
type pollRow struct {
	size    size
	polls   int              // checks without a change
	idle    map[string]int64 // their calls, summed
	changed map[string]int64 // calls of one check after one secret (and one parameter) rotated
	changes int              // environments reported for that check (want 1)
}

func (r pollRow) idlePerPoll() float64 {
	var n int64
	for _, v := range r.idle {
		n += v
	}
	return float64(n) / float64(r.polls)
}

// sdkConfig is an in-process SDK configuration with the static test
// credentials, straight to the emulator.
func (b *bench) sdkConfig() aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  b.staticCreds(),
		BaseEndpoint: aws.String(b.emu.URL),
		HTTPClient:   b.sdkHTTPClient(),
	}
}

// templateFiles reads the template of s as rolesenv would, named as
// standard input ("-"), which a watch never reads again: the watches look
// at no file, so their only timers are their checks'.
func (b *bench) templateFiles(s size) ([]inject.File, error) {
	path, err := b.envFile(s)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return []inject.File{{Name: "-", Data: data}}, nil
}

// load loads files against cfg as rolesenv would, with a clean
// environment.
func load(ctx context.Context, files []inject.File, cfg aws.Config) (*inject.Source, error) {
	return inject.Load(ctx, files, inject.LoadOptions{Options: inject.Options{CleanEnv: true},
		Config: func(context.Context) (aws.Config, error) { return cfg, nil }})
}

// measurePolls watches in this process on a stepped clock: each
// check is triggered by the harness, and its calls are read from the
// emulator's counters.
func (b *bench) measurePolls(ctx context.Context, s size, polls int) (*pollRow, error) {
	if err := b.setRTT(viaEmulator, 0); err != nil {
		return nil, err
	}
	files, err := b.templateFiles(s)
	if err != nil {
		return nil, err
	}
	src, err := load(ctx, files, b.sdkConfig())
	if err != nil {
		return nil, err
	}
	clock := newStepClock()
	out := make(chan inject.Change, 16)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Watch(wctx, inject.WatchOptions{Clock: clock}, out) }()
	defer func() {
		cancel()
		<-done
	}()
	row := &pollRow{size: s, polls: polls, idle: map[string]int64{}}
	next := func() (time.Duration, error) {
		select {
		case d := <-clock.created:
			return d, nil
		case err := <-done:
			return 0, fmt.Errorf("the watcher stopped: %v", err)
		case <-time.After(60 * time.Second):
			return 0, fmt.Errorf("no check finished within a minute")
		}
	}
	// pending is the wait of the timer the watch set last: its first
	// check, then the next one after each check.
	pending, err := next()
	if err != nil {
		return nil, err
	}
	check := func() (map[string]int64, error) {
		if err := b.emu.resetCalls(); err != nil {
			return nil, err
		}
		clock.fire(pending)
		if pending, err = next(); err != nil {
			return nil, err
		}
		c, err := b.emu.calls()
		if err != nil {
			return nil, err
		}
		return c.Calls, nil
	}
	for range polls {
		calls, err := check()
		if err != nil {
			return nil, err
		}
		for op, n := range calls {
			row.idle[op] += n
		}
	}
	// Rotate one secret (and one parameter), then check once.
	if err := b.rotate(ctx, s); err != nil {
		return nil, err
	}
	calls, err := check()
	if err != nil {
		return nil, err
	}
	row.changed = calls
	for len(out) > 0 {
		c := <-out
		if c.Env != nil {
			row.changes++
		}
	}
	return row, nil
}

// rotate puts a new AWSCURRENT version of the first secret of s and a new
// version of its first parameter, through the AWS APIs.
func (b *bench) rotate(ctx context.Context, s size) error {
	cfg := b.sdkConfig()
	stamp := fmt.Sprint(time.Now().UnixNano())
	if s.secrets > 0 {
		sm := secretsmanager.NewFromConfig(cfg)
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(secretName(0)), SecretString: aws.String("rotated-" + stamp)}); err != nil {
			return err
		}
	}
	if s.params > 0 {
		ps := ssm.NewFromConfig(cfg)
		if _, err := ps.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(paramName(0)),
			Value: aws.String("rotated-" + stamp), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
			return err
		}
	}
	return nil
}

// knownOps are the operations opsLine names first, in this order.
var knownOps = []string{opSession, opGet, opBatch, opDescribe, opParams, opParam}

// opsLine prints call counts by operation, short names, in a stable order.
func opsLine(m map[string]int64, div float64) string {
	var parts []string
	for _, op := range knownOps {
		if n := m[op]; n > 0 {
			v := float64(n) / div
			s := fmt.Sprintf("%.1f", v)
			if v == float64(int64(v)) {
				s = fmt.Sprint(int64(v))
			}
			parts = append(parts, s+" "+shortOp(op))
		}
	}
	for op, n := range m {
		if !slices.Contains(knownOps, op) && n > 0 {
			parts = append(parts, fmt.Sprintf("%.1f %s", float64(n)/div, shortOp(op)))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " + ")
}

func shortOp(op string) string {
	_, name, _ := strings.Cut(op, ":")
	return name
}
