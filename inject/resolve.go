package inject

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// DefaultParallel bounds the requests a Resolver has in flight. It matches
// the SDK's idle connections per host, so parallel requests reuse TLS
// connections instead of opening new ones.
const DefaultParallel = 10

// Batch limits of the APIs.
const (
	secretsPerBatch = 20 // BatchGetSecretValue SecretIdList
	paramsPerCall   = 10 // GetParameters Names
)

// BatchMode chooses how AWSCURRENT secrets are fetched.
type BatchMode int

const (
	// BatchAuto is the default: see the package documentation for the
	// measurements behind it.
	BatchAuto BatchMode = iota
	// BatchNever fetches every secret with GetSecretValue, in parallel.
	BatchNever
	// BatchAlways fetches AWSCURRENT secrets with BatchGetSecretValue, 20
	// a call, in parallel.
	BatchAlways
)

// secretsAPI and ssmAPI are the SDK calls the resolver makes.
type secretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	BatchGetSecretValue(context.Context, *secretsmanager.BatchGetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
}

type ssmAPI interface {
	GetParameters(context.Context, *ssm.GetParametersInput, ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

// Resolver fetches values from Secrets Manager and Parameter Store. It is
// safe for concurrent use and keeps one client per region, so a watcher
// should reuse it.
type Resolver struct {
	// Config is the SDK configuration: credentials, the default region,
	// endpoints, retries. An ARN in another region is fetched there with
	// the same configuration.
	Config aws.Config
	// Logger receives debug lines naming references, short version ids,
	// counts and durations; never values. Nil is quiet.
	Logger *slog.Logger
	// Parallel bounds the requests in flight; 0 means DefaultParallel.
	Parallel int
	// Batch chooses between BatchGetSecretValue and GetSecretValue.
	Batch BatchMode

	mu          sync.Mutex
	sm          map[string]secretsAPI
	ps          map[string]ssmAPI
	newSM       func(region string) secretsAPI // tests
	newPS       func(region string) ssmAPI
	batchDenied atomic.Bool
	calls       atomic.Int64
}

// Calls is the number of AWS API requests the resolver has made, for
// start-up's log line and for watchers: fetches, batches and polls.
func (r *Resolver) Calls() int64 { return r.calls.Load() }

func (r *Resolver) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Resolver) region(f Fetch) string {
	if f.Region != "" {
		return f.Region
	}
	return r.Config.Region
}

func (r *Resolver) secrets(region string) secretsAPI {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.sm[region]; ok {
		return c
	}
	if r.sm == nil {
		r.sm = map[string]secretsAPI{}
	}
	var c secretsAPI
	if r.newSM != nil {
		c = r.newSM(region)
	} else {
		c = secretsmanager.NewFromConfig(r.Config, func(o *secretsmanager.Options) {
			o.Region = region
			o.Credentials = tagCredentials(o.Credentials)
		})
	}
	r.sm[region] = c
	return c
}

func (r *Resolver) params(region string) ssmAPI {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.ps[region]; ok {
		return c
	}
	if r.ps == nil {
		r.ps = map[string]ssmAPI{}
	}
	var c ssmAPI
	if r.newPS != nil {
		c = r.newPS(region)
	} else {
		c = ssm.NewFromConfig(r.Config, func(o *ssm.Options) {
			o.Region = region
			o.Credentials = tagCredentials(o.Credentials)
		})
	}
	r.ps[region] = c
	return c
}

// useBatch decides whether n AWSCURRENT secrets of one region are fetched
// with BatchGetSecretValue.
func (r *Resolver) useBatch(n int) bool {
	if r.batchDenied.Load() {
		return false
	}
	switch r.Batch {
	case BatchAlways:
		return n > 0
	case BatchNever:
		return false
	}
	return autoBatch(n, r.parallel())
}

// autoBatch is BatchAuto's rule: batch only when parallel GetSecretValue
// would need more than one round trip. See the package documentation.
func autoBatch(n, parallel int) bool {
	return n > parallel
}

func (r *Resolver) parallel() int {
	if r.Parallel > 0 {
		return r.Parallel
	}
	return DefaultParallel
}

// Resolve fetches everything t needs and renders the child's environment.
// Every broken reference is reported, as Errors; no environment comes back
// unless every reference resolved (start-up fails closed).
func (r *Resolver) Resolve(ctx context.Context, t *Template) (*Env, *Values, error) {
	start := time.Now()
	calls := r.calls.Load()
	vals := r.fetchRenewing(ctx, t.Fetches())
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, nil, err
	}
	env, err := t.Render(vals)
	if len(t.fetches) > 0 {
		r.log().Debug("resolved references", "references", t.uses, "fetches", len(t.fetches),
			"calls", r.calls.Load()-calls, "duration", time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		return nil, vals, err
	}
	return env, vals, nil
}

// Fetch fetches each distinct Fetch once: AWSCURRENT secrets of a region
// in batches or in parallel (see Batch), other secrets with
// GetSecretValue, parameters with GetParameters 10 names a call, all with
// at most Parallel requests in flight. Failures are recorded per fetch in
// the Values; Fetch itself does not fail.
func (r *Resolver) Fetch(ctx context.Context, fs []Fetch) *Values {
	vals := NewValues()
	var mu sync.Mutex
	put := func(f Fetch, v *fetched) {
		mu.Lock()
		vals.set(f, v)
		mu.Unlock()
	}
	var jobs []job
	current := map[string][]Fetch{}
	params := map[string][]Fetch{}
	var regions, paramRegions []string
	seen := map[Fetch]bool{}
	for _, f := range fs {
		if seen[f] {
			continue
		}
		seen[f] = true
		region := r.region(f)
		if region == "" {
			put(f, &fetched{err: noRegion(actionOf(f), f.ID)})
			continue
		}
		switch {
		case f.Service == ParameterStore:
			if params[region] == nil {
				paramRegions = append(paramRegions, region)
			}
			params[region] = append(params[region], f)
		case f.Stage == currentStage:
			if current[region] == nil {
				regions = append(regions, region)
			}
			current[region] = append(current[region], f)
		default:
			jobs = append(jobs, r.getJob(f, region, put))
		}
	}
	for _, region := range regions {
		list := current[region]
		if !r.useBatch(len(list)) {
			for _, f := range list {
				jobs = append(jobs, r.getJob(f, region, put))
			}
			continue
		}
		for len(list) > 0 {
			n := min(len(list), secretsPerBatch)
			jobs = append(jobs, r.batchJob(list[:n], region, put))
			list = list[n:]
		}
	}
	for _, region := range paramRegions {
		for _, chunk := range paramChunks(params[region]) {
			jobs = append(jobs, r.paramsJob(chunk, region, put))
		}
	}
	r.run(ctx, jobs)
	return vals
}

// Throttled calls at start-up are tried again, after the SDK's own
// attempts, until the start-up deadline: a fleet that starts at once
// shares the account's quotas (Parameter Store's GetParameters allows 40
// calls a second by default), and the SDK's three attempts are spent in a
// second or two. The waits are exponential with full jitter, from
// throttleBaseDelay up to throttleMaxDelay, so that the fleet spreads out.
const (
	throttleBaseDelay = 500 * time.Millisecond
	throttleMaxDelay  = 5 * time.Second
)

// waitThrottled waits before another attempt of a throttled call and
// reports true, or reports false at once: the failure is not throttling,
// there is no deadline (the watcher backs off on its own), or the wait
// would not end before the deadline.
func waitThrottled(ctx context.Context, fe *fetchError, attempt int) bool {
	deadline, ok := ctx.Deadline()
	if !ok || !fe.throttled() {
		return false
	}
	ceiling := min(throttleBaseDelay<<min(attempt-1, 10), throttleMaxDelay)
	delay := time.Duration(rand.Int64N(int64(ceiling) + 1))
	if time.Until(deadline) <= delay {
		return false
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// noRegion is the failure of a call that has no region to go to; every
// call of the run fails the same way.
func noRegion(action, resource string) *fetchError {
	return &fetchError{action: action, resource: resource, class: classConfig,
		msg: "no AWS region is configured (set --region or AWS_REGION)", shared: true}
}

func actionOf(f Fetch) string {
	if f.Service == ParameterStore {
		return "ssm:GetParameters"
	}
	return "secretsmanager:GetSecretValue"
}

// job is one request; it may ask for more (a fallback).
type job func(ctx context.Context) []job

// run runs jobs, and the jobs they ask for, with at most Parallel at once.
func (r *Resolver) run(ctx context.Context, jobs []job) {
	sem := make(chan struct{}, r.parallel())
	var wg sync.WaitGroup
	var start func(j job)
	start = func(j job) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			next := j(ctx)
			<-sem
			for _, n := range next {
				start(n)
			}
		}()
	}
	for _, j := range jobs {
		start(j)
	}
	wg.Wait()
}

func (r *Resolver) getJob(f Fetch, region string, put func(Fetch, *fetched)) job {
	return r.getJobAttempt(f, region, put, 1)
}

func (r *Resolver) getJobAttempt(f Fetch, region string, put func(Fetch, *fetched), attempt int) job {
	return func(ctx context.Context) []job {
		in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(f.ID)}
		if f.VersionID != "" {
			in.VersionId = aws.String(f.VersionID)
		} else {
			in.VersionStage = aws.String(f.Stage)
		}
		start := time.Now()
		r.calls.Add(1)
		out, err := r.secrets(region).GetSecretValue(ctx, in)
		if err != nil {
			fe := awsFailure("secretsmanager:GetSecretValue", f.ID, err)
			r.log().Debug("fetch failed", "ref", f.String(), "region", region, "code", fe.code, "duration", time.Since(start).Round(time.Millisecond))
			if waitThrottled(ctx, fe, attempt) {
				return []job{r.getJobAttempt(f, region, put, attempt+1)}
			}
			put(f, &fetched{err: fe})
			return nil
		}
		v := &fetched{ver: Version{
			ARN: aws.ToString(out.ARN), Name: aws.ToString(out.Name),
			VersionID: aws.ToString(out.VersionId), Stages: out.VersionStages,
		}}
		setSecret(v, out.SecretString, out.SecretBinary)
		r.log().Debug("fetched", "ref", f.String(), "region", region, "version", shortID(v.ver.VersionID), "duration", time.Since(start).Round(time.Millisecond))
		put(f, v)
		return nil
	}
}

func setSecret(v *fetched, s *string, b []byte) {
	switch {
	case s != nil:
		v.val = *s
	case b != nil:
		v.binary = b
	}
}

func (r *Resolver) batchJob(list []Fetch, region string, put func(Fetch, *fetched)) job {
	return func(ctx context.Context) []job {
		if r.batchDenied.Load() {
			return r.fallback(list, region, put)
		}
		ids := make([]string, len(list))
		for i, f := range list {
			ids[i] = f.ID
		}
		start := time.Now()
		done := map[int]bool{}
		var token *string
		for page := 0; page < 10; page++ {
			r.calls.Add(1)
			// No retries: a throttled or failing batch falls back at once
			// to GetSecretValue, whose quota is 100 times larger.
			out, err := r.secrets(region).BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids, NextToken: token},
				func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
			if err != nil {
				fe := awsFailure("secretsmanager:BatchGetSecretValue", strings.Join(ids, ","), err)
				switch fe.class {
				case classDenied:
					if !r.batchDenied.Swap(true) {
						r.log().Info("BatchGetSecretValue is not allowed; fetching secrets one by one with GetSecretValue", "code", fe.code)
					}
				case classConfig:
					// One bad id fails the whole batch: fetch one by one
					// so each error names its own reference.
				default:
					if ctx.Err() != nil {
						for i, f := range list {
							if !done[i] {
								put(f, &fetched{err: fe.forResource(f.ID)})
							}
						}
						return nil
					}
					r.log().Debug("BatchGetSecretValue failed; fetching with GetSecretValue", "region", region, "code", fe.code)
				}
				return r.fallback(remaining(list, done), region, put)
			}
			for _, sv := range out.SecretValues {
				for i, f := range list {
					if done[i] || !secretMatches(f.ID, aws.ToString(sv.Name), aws.ToString(sv.ARN)) {
						continue
					}
					done[i] = true
					v := &fetched{ver: Version{ARN: aws.ToString(sv.ARN), Name: aws.ToString(sv.Name),
						VersionID: aws.ToString(sv.VersionId), Stages: sv.VersionStages}}
					setSecret(v, sv.SecretString, sv.SecretBinary)
					put(f, v)
				}
			}
			for _, e := range out.Errors {
				for i, f := range list {
					if done[i] || aws.ToString(e.SecretId) != f.ID {
						continue
					}
					done[i] = true
					put(f, &fetched{err: codeFailure("secretsmanager:GetSecretValue", f.ID, aws.ToString(e.ErrorCode), aws.ToString(e.Message))})
				}
			}
			if token = out.NextToken; token == nil || len(done) == len(list) {
				break
			}
		}
		r.log().Debug("fetched batch", "region", region, "secrets", len(list), "duration", time.Since(start).Round(time.Millisecond))
		// Anything the batch did not answer for is fetched on its own.
		return r.fallback(remaining(list, done), region, put)
	}
}

func remaining(list []Fetch, done map[int]bool) []Fetch {
	var out []Fetch
	for i, f := range list {
		if !done[i] {
			out = append(out, f)
		}
	}
	return out
}

func (r *Resolver) fallback(list []Fetch, region string, put func(Fetch, *fetched)) []job {
	jobs := make([]job, len(list))
	for i, f := range list {
		jobs[i] = r.getJob(f, region, put)
	}
	return jobs
}

// secretMatches reports whether a batch answer (name, ARN) is for the
// requested id: a name, a full ARN, or a partial ARN (without the
// 6-character suffix).
func secretMatches(id, name, arn string) bool {
	if id == name || id == arn {
		return true
	}
	return strings.HasPrefix(id, "arn:") && len(arn) == len(id)+7 && strings.HasPrefix(arn, id+"-")
}

// codeFailure classifies an error reported inside a successful answer
// (BatchGetSecretValue's Errors).
func codeFailure(action, resource, code, msg string) *fetchError {
	fe := &fetchError{action: action, resource: resource, code: code, msg: oneLine(msg), class: classConfig}
	switch {
	case deniedCodes[code]:
		fe.class = classDenied
	case throttleCodes[code] || transientCodes[code]:
		fe.class = classUnavailable
	}
	return fe
}

// paramKey is a parameter's name as AWS reports it, for matching answers
// to requests: an ARN's name, and "/a" and "a" as one.
func paramKey(id string) string {
	if strings.HasPrefix(id, "arn:") {
		if i := strings.Index(id, ":parameter/"); i >= 0 {
			id = id[i+len(":parameter/"):]
		}
	}
	if rest, ok := strings.CutPrefix(id, "/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return id
}

// paramChunks splits parameter fetches into GetParameters calls of at most
// 10 names, never two selectors of one parameter in one call (AWS does
// not always say which selector an answer is for).
func paramChunks(fs []Fetch) [][]Fetch {
	var chunks [][]Fetch
	var keys []map[string]bool
next:
	for _, f := range fs {
		k := paramKey(f.ID)
		for i := range chunks {
			if len(chunks[i]) < paramsPerCall && !keys[i][k] {
				chunks[i] = append(chunks[i], f)
				keys[i][k] = true
				continue next
			}
		}
		chunks = append(chunks, []Fetch{f})
		keys = append(keys, map[string]bool{k: true})
	}
	return chunks
}

// paramSelector is the name GetParameters takes for f: name, name:version
// or name:label.
func paramSelector(f Fetch) string {
	switch {
	case f.Version != 0:
		return f.ID + ":" + strconv.FormatInt(f.Version, 10)
	case f.Label != "":
		return f.ID + ":" + f.Label
	}
	return f.ID
}

func (r *Resolver) paramsJob(list []Fetch, region string, put func(Fetch, *fetched)) job {
	return r.paramsJobAttempt(list, region, put, 1)
}

func (r *Resolver) paramsJobAttempt(list []Fetch, region string, put func(Fetch, *fetched), attempt int) job {
	return func(ctx context.Context) []job {
		names := make([]string, len(list))
		for i, f := range list {
			names[i] = paramSelector(f)
		}
		start := time.Now()
		r.calls.Add(1)
		out, err := r.params(region).GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(true)})
		if err != nil {
			fe := awsFailure("ssm:GetParameters", strings.Join(names, ","), err)
			if len(list) > 1 && (fe.class == classDenied || fe.class == classConfig) {
				// Ask for each on its own, so each error names its own
				// parameter.
				var jobs []job
				for _, f := range list {
					jobs = append(jobs, r.paramsJob([]Fetch{f}, region, put))
				}
				return jobs
			}
			if waitThrottled(ctx, fe, attempt) {
				return []job{r.paramsJobAttempt(list, region, put, attempt+1)}
			}
			for i, f := range list {
				put(f, &fetched{err: fe.forResource(names[i])})
			}
			return nil
		}
		invalid := map[string]bool{}
		for _, n := range out.InvalidParameters {
			invalid[n] = true
		}
		for i, f := range list {
			if invalid[names[i]] {
				put(f, &fetched{err: paramNotFound(names[i])})
				continue
			}
			j := paramIn(out.Parameters, f)
			if j < 0 {
				put(f, &fetched{err: &fetchError{action: "ssm:GetParameters", resource: names[i], code: "ParameterNotFound",
					msg: "the answer did not include this parameter", class: classConfig}})
				continue
			}
			p := out.Parameters[j]
			put(f, &fetched{val: aws.ToString(p.Value), ver: Version{ARN: aws.ToString(p.ARN), Name: aws.ToString(p.Name), Version: p.Version}})
			r.log().Debug("fetched", "ref", f.String(), "region", region, "version", p.Version)
		}
		r.log().Debug("fetched parameters", "region", region, "parameters", len(list), "duration", time.Since(start).Round(time.Millisecond))
		return nil
	}
}

// paramNotFound is the failure of a selector that GetParameters listed as
// invalid.
func paramNotFound(selector string) *fetchError {
	return &fetchError{action: "ssm:GetParameters", resource: selector, code: "ParameterNotFound",
		msg: "no such parameter, version or label", class: classConfig}
}

// paramIn finds the parameter that answers f in a GetParameters answer,
// by name or ARN; -1 when there is none.
func paramIn(ps []ssmtypes.Parameter, f Fetch) int {
	key := paramKey(f.ID)
	return slices.IndexFunc(ps, func(p ssmtypes.Parameter) bool {
		return paramKey(aws.ToString(p.Name)) == key || aws.ToString(p.ARN) == f.ID
	})
}

// shortID shortens a version id for logs.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
