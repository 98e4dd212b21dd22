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
	// BatchAuto is the default: GetSecretValue in parallel while a
	// region has at most Parallel AWSCURRENT secrets (one round trip
	// either way, on the larger quota), BatchGetSecretValue beyond. A
	// batch that is throttled, fails or is denied falls back to
	// GetSecretValue.
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
// would need more than one round trip.
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

// Fetch fetches each distinct Fetch once, with the requests that Plan
// describes, all with at most Parallel requests in flight. Failures are
// recorded per fetch in the Values; Fetch itself does not fail.
func (r *Resolver) Fetch(ctx context.Context, fs []Fetch) *Values {
	vals := NewValues()
	var mu sync.Mutex
	put := func(f Fetch, v *fetched) {
		mu.Lock()
		vals.set(f, v)
		mu.Unlock()
	}
	reqs, unplaced := r.requests(fs)
	for _, f := range unplaced {
		put(f, &fetched{err: noRegion(actionOf(f), f.ID)})
	}
	jobs := make([]job, len(reqs))
	for i, q := range reqs {
		switch q.op {
		case opBatch:
			jobs[i] = r.batchJob(q.fetches, q.region, put)
		case opParams:
			jobs[i] = r.paramsJob(q.fetches, q.region, put)
		default:
			jobs[i] = r.getJob(q.fetches[0], q.region, put)
		}
	}
	r.run(ctx, jobs)
	return vals
}

// Operations of a plan.
const (
	opGet    = "GetSecretValue"
	opBatch  = "BatchGetSecretValue"
	opParams = "GetParameters"
)

// Plan is what a first round of fetches sends: the requests Fetch makes
// before any answer comes back (a failed batch or a throttled call adds
// more later).
type Plan struct {
	// Calls are grouped by service, region and operation, in the order
	// Fetch starts them.
	Calls []Call
	// InFlight bounds the requests in flight at once, all calls together.
	InFlight int
}

// Call is the requests of one operation to one service in one region.
type Call struct {
	Service   Service
	Region    string
	Operation string // GetSecretValue, BatchGetSecretValue or GetParameters
	Requests  int
}

// Plan says which requests Fetch would send first for fs. It sends
// nothing. A fetch with no region to go to is in no call.
func (r *Resolver) Plan(fs []Fetch) Plan {
	reqs, _ := r.requests(fs)
	p := Plan{InFlight: r.parallel()}
	at := map[Call]int{} // index in p.Calls, by call without Requests
	for _, q := range reqs {
		k := Call{Service: SecretsManager, Region: q.region, Operation: q.op}
		if q.op == opParams {
			k.Service = ParameterStore
		}
		i, ok := at[k]
		if !ok {
			i = len(p.Calls)
			at[k] = i
			p.Calls = append(p.Calls, k)
		}
		p.Calls[i].Requests++
	}
	return p
}

// request is one request of a first round and the fetches it answers.
type request struct {
	op      string
	region  string
	fetches []Fetch
}

// requests is the batching rule, in one place: each distinct fetch once;
// a secret pinned to a stage or version with GetSecretValue; AWSCURRENT
// secrets of a region in batches of 20 or one by one (useBatch);
// parameters 10 names a call (paramChunks). Fetches without a region are
// returned apart.
func (r *Resolver) requests(fs []Fetch) (reqs []request, unplaced []Fetch) {
	current, params := &byRegion{}, &byRegion{}
	seen := map[Fetch]bool{}
	for _, f := range fs {
		if seen[f] {
			continue
		}
		seen[f] = true
		region := r.region(f)
		switch {
		case region == "":
			unplaced = append(unplaced, f)
		case f.Service == ParameterStore:
			params.add(region, f)
		case f.Stage == currentStage:
			current.add(region, f)
		default:
			reqs = append(reqs, request{op: opGet, region: region, fetches: []Fetch{f}})
		}
	}
	for _, region := range current.order {
		reqs = append(reqs, r.currentRequests(region, current.m[region])...)
	}
	for _, region := range params.order {
		for _, chunk := range paramChunks(params.m[region]) {
			reqs = append(reqs, request{op: opParams, region: region, fetches: chunk})
		}
	}
	return reqs, unplaced
}

// currentRequests fetches a region's AWSCURRENT secrets in batches or one
// by one.
func (r *Resolver) currentRequests(region string, list []Fetch) []request {
	var reqs []request
	if !r.useBatch(len(list)) {
		for _, f := range list {
			reqs = append(reqs, request{op: opGet, region: region, fetches: []Fetch{f}})
		}
		return reqs
	}
	for len(list) > 0 {
		n := min(len(list), secretsPerBatch)
		reqs = append(reqs, request{op: opBatch, region: region, fetches: list[:n]})
		list = list[n:]
	}
	return reqs
}

// byRegion groups fetches by region, regions in order of appearance.
type byRegion struct {
	order []string
	m     map[string][]Fetch
}

func (b *byRegion) add(region string, f Fetch) {
	if b.m == nil {
		b.m = map[string][]Fetch{}
	}
	if b.m[region] == nil {
		b.order = append(b.order, region)
	}
	b.m[region] = append(b.m[region], f)
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

// ErrNoRegion is in the chain of a fetch's error when neither the
// reference nor the configuration names a region.
var ErrNoRegion = errors.New("no AWS region is configured")

// noRegion is the failure of a call that has no region to go to; every
// call of the run fails the same way.
func noRegion(action, resource string) *fetchError {
	return &fetchError{action: action, resource: resource, class: classConfig,
		msg: ErrNoRegion.Error(), cause: ErrNoRegion, shared: true}
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
		b := &batch{list: list, done: map[int]bool{}, put: put}
		ids := b.ids()
		start := time.Now()
		var token *string
		for page := 0; page < 10; page++ {
			r.calls.Add(1)
			// No retries: a throttled or failing batch falls back at once
			// to GetSecretValue, whose quota is 100 times larger.
			out, err := r.secrets(region).BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids, NextToken: token},
				func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
			if err != nil {
				return r.batchFailed(ctx, b, region, awsFailure("secretsmanager:BatchGetSecretValue", strings.Join(ids, ","), err))
			}
			b.take(out)
			if token = out.NextToken; token == nil || len(b.done) == len(list) {
				break
			}
		}
		r.log().Debug("fetched batch", "region", region, "secrets", len(list), "duration", time.Since(start).Round(time.Millisecond))
		// Anything the batch did not answer for is fetched on its own.
		return r.fallback(b.remaining(), region, put)
	}
}

// batch is one BatchGetSecretValue request's fetches and which of them
// have an answer.
type batch struct {
	list []Fetch
	done map[int]bool // by index in list
	put  func(Fetch, *fetched)
}

func (b *batch) ids() []string {
	ids := make([]string, len(b.list))
	for i, f := range b.list {
		ids[i] = f.ID
	}
	return ids
}

// take records one page of answers: values and per-secret errors.
func (b *batch) take(out *secretsmanager.BatchGetSecretValueOutput) {
	for _, sv := range out.SecretValues {
		for i, f := range b.list {
			if b.done[i] || !secretMatches(f.ID, aws.ToString(sv.Name), aws.ToString(sv.ARN)) {
				continue
			}
			b.done[i] = true
			v := &fetched{ver: Version{ARN: aws.ToString(sv.ARN), Name: aws.ToString(sv.Name),
				VersionID: aws.ToString(sv.VersionId), Stages: sv.VersionStages}}
			setSecret(v, sv.SecretString, sv.SecretBinary)
			b.put(f, v)
		}
	}
	for _, e := range out.Errors {
		for i, f := range b.list {
			if b.done[i] || aws.ToString(e.SecretId) != f.ID {
				continue
			}
			b.done[i] = true
			b.put(f, &fetched{err: codeFailure("secretsmanager:GetSecretValue", f.ID, aws.ToString(e.ErrorCode), aws.ToString(e.Message))})
		}
	}
}

func (b *batch) remaining() []Fetch {
	var out []Fetch
	for i, f := range b.list {
		if !b.done[i] {
			out = append(out, f)
		}
	}
	return out
}

// batchFailed decides what follows a failed batch call: GetSecretValue
// for each secret not answered yet, unless the deadline has passed.
func (r *Resolver) batchFailed(ctx context.Context, b *batch, region string, fe *fetchError) []job {
	switch fe.class {
	case classDenied:
		if !r.batchDenied.Swap(true) {
			r.log().Info("BatchGetSecretValue is not allowed; fetching secrets one by one with GetSecretValue", "code", fe.code)
		}
	case classConfig:
		// One bad id fails the whole batch: fetch one by one so each
		// error names its own reference.
	default:
		if ctx.Err() != nil {
			for _, f := range b.remaining() {
				b.put(f, &fetched{err: fe.forResource(f.ID)})
			}
			return nil
		}
		r.log().Debug("BatchGetSecretValue failed; fetching with GetSecretValue", "region", region, "code", fe.code)
	}
	return r.fallback(b.remaining(), region, b.put)
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
			return r.paramsFailed(ctx, list, names, region, put, attempt, awsFailure("ssm:GetParameters", strings.Join(names, ","), err))
		}
		r.takeParams(list, names, out, region, put)
		r.log().Debug("fetched parameters", "region", region, "parameters", len(list), "duration", time.Since(start).Round(time.Millisecond))
		return nil
	}
}

// paramsFailed decides what follows a failed GetParameters call: each
// name on its own when AWS refused the call (so each error names its own
// parameter), the same call again when throttled, or the failure.
func (r *Resolver) paramsFailed(ctx context.Context, list []Fetch, names []string, region string, put func(Fetch, *fetched), attempt int, fe *fetchError) []job {
	if len(list) > 1 && (fe.class == classDenied || fe.class == classConfig) {
		jobs := make([]job, len(list))
		for i, f := range list {
			jobs[i] = r.paramsJob([]Fetch{f}, region, put)
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

// takeParams records a GetParameters answer for each fetch of the call.
func (r *Resolver) takeParams(list []Fetch, names []string, out *ssm.GetParametersOutput, region string, put func(Fetch, *fetched)) {
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
