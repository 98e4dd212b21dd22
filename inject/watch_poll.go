package inject

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// secretDescriber is the call a watcher polls secrets with; the SDK's
// Secrets Manager client has it.
type secretDescriber interface {
	DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

// Poll calls are not retried by the SDK: the watcher's back-off retries
// the whole check.
func noRetrySM(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 }
func noRetrySSM(o *ssm.Options)           { o.RetryMaxAttempts = 1 }

// poll asks AWS which of the fetches moved: one DescribeSecret per
// distinct secret id and region, one GetParameters per 10 parameter
// selectors, at most Parallel requests at once, the calls spaced evenly
// over spread (none: all at once). It returns what to fetch again and the
// fetches that could not be polled.
func (w *watcher) poll(ctx context.Context, r *Resolver, secrets, params []Fetch, spread time.Duration) ([]rotation, []failure) {
	var mu sync.Mutex
	var rotated []rotation
	var fails []failure
	add := func(rs []rotation, fs []failure) {
		mu.Lock()
		rotated = append(rotated, rs...)
		fails = append(fails, fs...)
		mu.Unlock()
	}
	var jobs []func()
	groups := map[[2]string][]Fetch{}
	var order [][2]string
	for _, f := range secrets {
		k := [2]string{r.region(f), f.ID}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], f)
	}
	for _, k := range order {
		list := groups[k]
		jobs = append(jobs, func() { add(w.describe(ctx, r, k[0], list)) })
	}
	byRegion := map[string][]Fetch{}
	var regions []string
	for _, f := range params {
		region := r.region(f)
		if byRegion[region] == nil {
			regions = append(regions, region)
		}
		byRegion[region] = append(byRegion[region], f)
	}
	for _, region := range regions {
		for _, chunk := range paramChunks(byRegion[region]) {
			jobs = append(jobs, func() { add(w.pollParams(ctx, r, region, chunk)) })
		}
	}
	sem := make(chan struct{}, r.parallel())
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if spread > 0 && i > 0 {
				t := w.clock.NewTimer(spread * time.Duration(i) / time.Duration(len(jobs)))
				defer t.Stop()
				select {
				case <-t.C():
				case <-ctx.Done():
				}
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			j()
		}()
	}
	wg.Wait()
	// Stable order for logs and reasons.
	slices.SortFunc(rotated, func(a, b rotation) int { return strings.Compare(a.f.String()+a.f.Region, b.f.String()+b.f.Region) })
	slices.SortFunc(fails, func(a, b failure) int { return strings.Compare(a.ref, b.ref) })
	return rotated, fails
}

// failAll is one failure for each fetch of a call that failed.
func (w *watcher) failAll(ctx context.Context, list []Fetch, fe *fetchError) []failure {
	fe = w.timedOut(ctx, fe)
	out := make([]failure, len(list))
	for i, f := range list {
		out[i] = failure{ref: f.String(), code: fe.code, err: fe}
	}
	return out
}

// describe polls one secret for every stage its fetches read.
func (w *watcher) describe(ctx context.Context, r *Resolver, region string, list []Fetch) ([]rotation, []failure) {
	const action = "secretsmanager:DescribeSecret"
	id := list[0].ID
	all := func(fe *fetchError) []failure { return w.failAll(ctx, list, fe) }
	if region == "" {
		return nil, all(noRegion(action, id))
	}
	c, ok := r.secrets(region).(secretDescriber)
	if !ok {
		return nil, all(&fetchError{action: action, resource: id, class: classOther, msg: "the client cannot describe secrets"})
	}
	r.calls.Add(1)
	out, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)}, noRetrySM)
	if err != nil {
		return nil, all(awsFailure(action, id, err))
	}
	if out.DeletedDate != nil {
		return nil, all(&fetchError{action: action, resource: id, class: classConfig, msg: "the secret is scheduled for deletion"})
	}
	var rotated []rotation
	var fails []failure
	for _, f := range list {
		cur := ""
		for v, stages := range out.VersionIdsToStages {
			if slices.Contains(stages, f.Stage) {
				cur = v
				break
			}
		}
		if cur == "" {
			fails = append(fails, failure{ref: f.String(), err: &fetchError{action: action, resource: id, class: classConfig,
				msg: "no version of the secret has the stage " + f.Stage}})
			continue
		}
		old, _ := w.vals.Version(f)
		if cur != old.VersionID {
			rotated = append(rotated, rotation{f: f, from: shortID(old.VersionID), to: shortID(cur),
				ask: Fetch{Service: SecretsManager, Region: f.Region, ID: f.ID, VersionID: cur}})
		}
	}
	return rotated, fails
}

// pollParams polls up to 10 parameter selectors with one GetParameters
// call, without decryption: only the versions are compared.
func (w *watcher) pollParams(ctx context.Context, r *Resolver, region string, list []Fetch) ([]rotation, []failure) {
	const action = "ssm:GetParameters"
	names := make([]string, len(list))
	for i, f := range list {
		names[i] = paramSelector(f)
	}
	all := func(fe *fetchError) []failure { return w.failAll(ctx, list, fe) }
	if region == "" {
		return nil, all(noRegion(action, strings.Join(names, ",")))
	}
	r.calls.Add(1)
	out, err := r.params(region).GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(false)}, noRetrySSM)
	if err != nil {
		return nil, all(awsFailure(action, strings.Join(names, ","), err))
	}
	var rotated []rotation
	var fails []failure
	for i, f := range list {
		if slices.Contains(out.InvalidParameters, names[i]) {
			fails = append(fails, failure{ref: f.String(), code: "ParameterNotFound", err: paramNotFound(names[i])})
			continue
		}
		j := paramIn(out.Parameters, f)
		if j < 0 {
			fails = append(fails, failure{ref: f.String(), err: errors.New("ssm:GetParameters did not answer for " + f.ID)})
			continue
		}
		old, _ := w.vals.Version(f)
		if v := out.Parameters[j].Version; v != old.Version {
			rotated = append(rotated, rotation{f: f, from: shortVersion(old, f), to: shortVersion(Version{Version: v}, f), ask: f})
		}
	}
	return rotated, fails
}
