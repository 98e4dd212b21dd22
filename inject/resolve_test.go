package inject

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// fakeAWS records calls per region and answers from a table of secrets
// (by name) and parameters (by name and selector).
type fakeAWS struct {
	mu      sync.Mutex
	calls   []string // "region op ids"
	secrets map[string]string
	params  map[string]string
	// batch answers: a page size (0: all at once), ids reported in Errors,
	// and an error for the whole call.
	batchPage   int
	batchErrors map[string]string
	batchErr    error
	paramsErr   func(names []string) error
}

type fakeSM struct {
	f      *fakeAWS
	region string
}

type fakeSSM struct {
	f      *fakeAWS
	region string
}

func (f *fakeAWS) record(region, op string, ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, region+" "+op+" "+strings.Join(ids, ","))
}

func (f *fakeAWS) resolver() *Resolver {
	return &Resolver{
		Config: aws.Config{Region: "us-east-1"},
		newSM:  func(region string) secretsAPI { return fakeSM{f, region} },
		newPS:  func(region string) ssmAPI { return fakeSSM{f, region} },
	}
}

func (f *fakeAWS) secretName(id string) string {
	if strings.HasPrefix(id, "arn:") {
		name := strings.Split(id, ":")[6]
		if _, ok := f.secrets[name]; ok {
			return name // a partial ARN
		}
		return name[:len(name)-7]
	}
	return id
}

func notFound() error {
	return &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Secrets Manager can't find the specified secret."}
}

func (c fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	id := aws.ToString(in.SecretId)
	c.f.record(c.region, "GetSecretValue", []string{id + "@" + aws.ToString(in.VersionStage) + aws.ToString(in.VersionId)})
	name := c.f.secretName(id)
	v, ok := c.f.secrets[name]
	if !ok {
		return nil, notFound()
	}
	return &secretsmanager.GetSecretValueOutput{Name: aws.String(name), ARN: aws.String("arn:aws:secretsmanager:" + c.region + ":1:secret:" + name + "-AbCdEf"),
		SecretString: aws.String(v), VersionId: aws.String("v-" + name), VersionStages: []string{"AWSCURRENT"}}, nil
}

func (c fakeSM) BatchGetSecretValue(_ context.Context, in *secretsmanager.BatchGetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error) {
	c.f.record(c.region, "BatchGetSecretValue", in.SecretIdList)
	if c.f.batchErr != nil {
		return nil, c.f.batchErr
	}
	start := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &start)
	}
	out := &secretsmanager.BatchGetSecretValueOutput{}
	ids := in.SecretIdList[start:]
	if c.f.batchPage > 0 && len(ids) > c.f.batchPage {
		ids = ids[:c.f.batchPage]
		out.NextToken = aws.String(fmt.Sprint(start + c.f.batchPage))
	}
	for _, id := range ids {
		if code, ok := c.f.batchErrors[id]; ok {
			out.Errors = append(out.Errors, smtypes.APIErrorType{SecretId: aws.String(id), ErrorCode: aws.String(code), Message: aws.String("no")})
			continue
		}
		name := c.f.secretName(id)
		v, ok := c.f.secrets[name]
		if !ok {
			continue // not answered at all: the resolver asks on its own
		}
		out.SecretValues = append(out.SecretValues, smtypes.SecretValueEntry{Name: aws.String(name),
			ARN:          aws.String("arn:aws:secretsmanager:" + c.region + ":1:secret:" + name + "-AbCdEf"),
			SecretString: aws.String(v), VersionId: aws.String("v-" + name), VersionStages: []string{"AWSCURRENT"}})
	}
	return out, nil
}

func (c fakeSSM) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	c.f.record(c.region, "GetParameters", in.Names)
	if !aws.ToBool(in.WithDecryption) {
		return nil, errors.New("WithDecryption not set")
	}
	if c.f.paramsErr != nil {
		if err := c.f.paramsErr(in.Names); err != nil {
			return nil, err
		}
	}
	out := &ssm.GetParametersOutput{}
	for _, n := range in.Names {
		v, ok := c.f.params[n]
		if !ok {
			out.InvalidParameters = append(out.InvalidParameters, n)
			continue
		}
		base, _, _ := strings.Cut(n, ":")
		if strings.HasPrefix(n, "arn:") {
			base = n
		}
		out.Parameters = append(out.Parameters, ssmtypes.Parameter{Name: aws.String(base), Value: aws.String(v), Version: 1})
	}
	return out, nil
}

func parse(t *testing.T, src string) *Template {
	t.Helper()
	tm, err := Parse([]File{{Name: "a.env", Data: []byte(src)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func lookup(t *testing.T, env *Env, name string) string {
	t.Helper()
	v, ok := env.Lookup(name)
	if !ok {
		t.Fatalf("%s not set", name)
	}
	return v.Reveal()
}

// TestRegions: an ARN in another region is fetched there, with a client
// for that region; everything else in the configuration's region.
func TestRegions(t *testing.T) {
	f := &fakeAWS{secrets: map[string]string{"a": "A", "w": "W", "x": "X"},
		params: map[string]string{"/p": "P", "arn:aws:ssm:eu-west-1:1:parameter/q": "Q"}}
	tm := parse(t, "A=sm://a\nW=arn:aws:secretsmanager:us-west-2:1:secret:w-AbCdEf\n"+
		"P=ssm:///p\nQ=arn:aws:ssm:eu-west-1:1:parameter/q\nX=arn:aws:ssm:ap-south-1:1:parameter/aws/reference/secretsmanager/x\n")
	env, vals, err := f.resolver().Resolve(context.Background(), tm)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"A": "A", "W": "W", "P": "P", "Q": "Q", "X": "X"} {
		if got := lookup(t, env, name); got != want {
			t.Errorf("%s = %q", name, got)
		}
	}
	slices.Sort(f.calls)
	want := []string{
		"ap-south-1 GetSecretValue arn:aws:secretsmanager:ap-south-1:1:secret:x@AWSCURRENT",
		"eu-west-1 GetParameters arn:aws:ssm:eu-west-1:1:parameter/q",
		"us-east-1 GetParameters /p",
		"us-east-1 GetSecretValue a@AWSCURRENT",
		"us-west-2 GetSecretValue arn:aws:secretsmanager:us-west-2:1:secret:w-AbCdEf@AWSCURRENT",
	}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls:\n%s\nwant\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	var w Fetch
	for _, f := range tm.Fetches() {
		if strings.Contains(f.ID, "us-west-2") {
			w = f
		}
	}
	v, ok := vals.Version(w)
	if !ok || v.VersionID != "v-w" || v.Name != "w" || !strings.HasPrefix(v.ARN, "arn:aws:secretsmanager:us-west-2:") {
		t.Errorf("version %+v", v)
	}
	// No region anywhere is a configuration error, per reference.
	r := f.resolver()
	r.Config.Region = ""
	_, _, err = r.Resolve(context.Background(), parse(t, "A=sm://a\n"))
	if err == nil || err.Error() != "a.env:1: A: sm://a: secretsmanager:GetSecretValue on a: no AWS region is configured" || !errors.Is(err, ErrNoRegion) {
		t.Errorf("no region: %v", err)
	}
}

// TestBatchAnswers: batch answers are matched to the ids as written
// (names, full and partial ARNs), pages are followed, per-secret errors
// are reported with their codes, and ids the batch leaves out are fetched
// on their own.
func TestBatchAnswers(t *testing.T) {
	f := &fakeAWS{secrets: map[string]string{}, batchPage: 7,
		batchErrors: map[string]string{"denied": "AccessDeniedException", "gone": "ResourceNotFoundException"}}
	var src strings.Builder
	for i := range 22 {
		name := fmt.Sprintf("s%02d", i)
		f.secrets[name] = "v" + name
		switch i % 3 {
		case 0:
			fmt.Fprintf(&src, "S%02d=sm://%s\n", i, name)
		case 1:
			fmt.Fprintf(&src, "S%02d=sm://arn:aws:secretsmanager:us-east-1:1:secret:%s-AbCdEf\n", i, name)
		case 2:
			fmt.Fprintf(&src, "S%02d=sm://arn:aws:secretsmanager:us-east-1:1:secret:%s\n", i, name)
		}
	}
	src.WriteString("D=sm://denied\nG=sm://gone\nM=sm://missing\n")
	r := f.resolver()
	r.Batch = BatchAlways
	env, _, err := r.Resolve(context.Background(), parse(t, src.String()))
	want := "a.env:23: D: sm://denied: access denied: secretsmanager:GetSecretValue on denied: AccessDeniedException: no\n" +
		"a.env:24: G: sm://gone: secretsmanager:GetSecretValue on gone: ResourceNotFoundException: no\n" +
		"a.env:25: M: sm://missing: secretsmanager:GetSecretValue on missing: ResourceNotFoundException: Secrets Manager can't find the specified secret."
	if err == nil || err.Error() != want || env != nil {
		t.Fatalf("errors:\n%v\nwant\n%s", err, want)
	}
	var es Errors
	errors.As(err, &es)
	var re *ResolveError
	if !errors.As(es[0], &re) || !re.AccessDenied() || re.Code != "AccessDeniedException" {
		t.Errorf("first error: %#v", es[0])
	}
	var batches, gets int
	for _, c := range f.calls {
		switch {
		case strings.Contains(c, "BatchGetSecretValue"):
			batches++
		case strings.Contains(c, "GetSecretValue missing@"):
			gets++
		default:
			t.Errorf("unexpected call %s", c)
		}
	}
	// 25 ids: two batches of 20 and 5, in pages of 7: 3 + 1 calls.
	if batches != 4 || gets != 1 {
		t.Errorf("%d batch calls and %d others:\n%s", batches, gets, strings.Join(f.calls, "\n"))
	}

	// Everything else resolved.
	delete(f.batchErrors, "denied")
	delete(f.batchErrors, "gone")
	f.secrets["denied"], f.secrets["gone"], f.secrets["missing"] = "d", "g", "m"
	env, _, err = r.Resolve(context.Background(), parse(t, src.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 22 {
		if got := lookup(t, env, fmt.Sprintf("S%02d", i)); got != fmt.Sprintf("vs%02d", i) {
			t.Errorf("S%02d = %q", i, got)
		}
	}
}

// TestBatchDeniedFallback: a batch refused as a whole falls back to
// GetSecretValue for every id, and the resolver stops trying batches.
func TestBatchDeniedFallback(t *testing.T) {
	f := &fakeAWS{secrets: map[string]string{"a": "1", "b": "2"},
		batchErr: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: secretsmanager:BatchGetSecretValue"}}
	r := f.resolver()
	r.Batch = BatchAlways
	for range 2 {
		env, _, err := r.Resolve(context.Background(), parse(t, "A=sm://a\nB=sm://b\n"))
		if err != nil {
			t.Fatal(err)
		}
		if lookup(t, env, "A") != "1" || lookup(t, env, "B") != "2" {
			t.Error("values")
		}
	}
	var n int
	for _, c := range f.calls {
		if strings.Contains(c, "Batch") {
			n++
		}
	}
	if n != 1 || len(f.calls) != 5 {
		t.Errorf("calls:\n%s", strings.Join(f.calls, "\n"))
	}
}

// TestParameterCalls: 10 names a call, never two selectors of one
// parameter in a call, missing ones reported, a call refused as a whole
// asked again name by name so each error names its parameter.
func TestParameterCalls(t *testing.T) {
	f := &fakeAWS{params: map[string]string{}}
	var src strings.Builder
	for i := range 23 {
		name := fmt.Sprintf("/p/%02d", i)
		f.params[name] = fmt.Sprint(i)
		fmt.Fprintf(&src, "P%02d=ssm://%s\n", i, name)
	}
	f.params["/p/00:2"] = "v2"
	f.params["/p/00:prod"] = "label"
	src.WriteString("V=ssm:///p/00?version=2\nL={{ ssm:///p/00?label=prod }}\nM=ssm:///p/missing\n")
	_, _, err := f.resolver().Resolve(context.Background(), parse(t, src.String()))
	if err == nil || err.Error() != "a.env:26: M: ssm:///p/missing: ssm:GetParameters on /p/missing: ParameterNotFound: no such parameter, version or label" {
		t.Fatalf("%v", err)
	}
	for _, c := range f.calls {
		names := strings.Split(strings.SplitN(c, " ", 3)[2], ",")
		if len(names) > 10 {
			t.Errorf("%d names in a call", len(names))
		}
		seen := map[string]bool{}
		for _, n := range names {
			base, _, _ := strings.Cut(n, ":")
			if seen[base] {
				t.Errorf("two selectors of %s in one call: %s", base, c)
			}
			seen[base] = true
		}
	}
	if len(f.calls) != 3 {
		t.Errorf("%d calls for 26 names, want 3", len(f.calls))
	}
	f.params["/p/missing"] = "found"
	env, _, err := f.resolver().Resolve(context.Background(), parse(t, src.String()))
	if err != nil {
		t.Fatal(err)
	}
	if lookup(t, env, "V") != "v2" || lookup(t, env, "L") != "label" || lookup(t, env, "P00") != "0" || lookup(t, env, "P22") != "22" {
		t.Error("values")
	}

	// A refused call is split.
	f.calls = nil
	f.paramsErr = func(names []string) error {
		if slices.Contains(names, "/p/03") {
			return &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}
		}
		return nil
	}
	_, _, err = f.resolver().Resolve(context.Background(), parse(t, "A=ssm:///p/01\nB=ssm:///p/03\nC=ssm:///p/02\n"))
	if err == nil || err.Error() != "a.env:2: B: ssm:///p/03: access denied: ssm:GetParameters on /p/03: AccessDeniedException: not authorized" {
		t.Errorf("%v", err)
	}
	if len(f.calls) != 4 {
		t.Errorf("calls:\n%s", strings.Join(f.calls, "\n"))
	}
}

func TestAutoBatch(t *testing.T) {
	if autoBatch(1, 10) || autoBatch(10, 10) || !autoBatch(11, 10) {
		t.Error("batch only when GetSecretValue needs more than one round")
	}
	r := &Resolver{Batch: BatchNever}
	if r.useBatch(100) {
		t.Error("BatchNever")
	}
	r = &Resolver{Batch: BatchAlways}
	if !r.useBatch(1) {
		t.Error("BatchAlways")
	}
	r.batchDenied.Store(true)
	if r.useBatch(100) {
		t.Error("after a denial")
	}
}

// answer is an HTTP handler that always answers status with body.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// classify resolves one secret against a server that answers with h, with
// the real SDK, and returns the error.
func classify(t *testing.T, h http.Handler, timeout time.Duration) *ResolveError {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
		}),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond })
		},
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	_, _, err := (&Resolver{Config: cfg}).Resolve(ctx, parse(t, "X=sm://x\n"))
	var re *ResolveError
	if !errors.As(err, &re) {
		t.Fatalf("%v is not a ResolveError", err)
	}
	return re
}

func TestErrorClasses(t *testing.T) {
	// moto answers 403 with an XML body the JSON protocol cannot read.
	re := classify(t, answer(403, "text/xml", `<ErrorResponse><Error><Code>AccessDenied</Code><Message>User is not authorized</Message></Error></ErrorResponse>`), 0)
	if !re.AccessDenied() || re.Code != "HTTP 403" || re.Error() != "a.env:1: X: sm://x: access denied: secretsmanager:GetSecretValue on x: HTTP 403: the answer was not the service's error format" {
		t.Errorf("403 XML: %v (code %q)", re, re.Code)
	}
	re = classify(t, answer(400, "application/x-amz-json-1.1", `{"__type":"AccessDeniedException","message":"no"}`), 0)
	if !re.AccessDenied() || re.Code != "AccessDeniedException" {
		t.Errorf("AccessDeniedException: %v", re)
	}
	re = classify(t, answer(400, "application/x-amz-json-1.1", `{"__type":"ResourceNotFoundException","message":"gone"}`), 0)
	if !re.Config() || re.Code != "ResourceNotFoundException" {
		t.Errorf("ResourceNotFoundException: %v", re)
	}
	var calls int
	var mu sync.Mutex
	re = classify(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		answer(500, "application/x-amz-json-1.1", `{"__type":"InternalServiceError","message":"down"}`)(w, r)
	}), 0)
	if !re.Unavailable() || calls != 3 {
		t.Errorf("500 after %d calls: %v", calls, re)
	}
	re = classify(t, answer(400, "application/x-amz-json-1.1", `{"__type":"ThrottlingException","message":"slow down"}`), 0)
	if !re.Unavailable() {
		t.Errorf("throttling: %v", re)
	}
	re = classify(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// With the body read, the server notices the client giving up.
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}), 50*time.Millisecond)
	if !re.Unavailable() || !strings.Contains(re.Error(), "the start-up deadline passed before AWS answered") {
		t.Errorf("deadline: %v", re)
	}
}

// deniedSource is a credential source error that classifies itself.
type deniedSource struct{}

func (deniedSource) Error() string      { return "the trust anchor refused the certificate" }
func (deniedSource) AccessDenied() bool { return true }

// throttledSource is a credential source that was throttled until the
// deadline, as the signer reports it.
type throttledSource struct{}

func (throttledSource) Error() string     { return "CreateSession throttled; the deadline passed" }
func (throttledSource) Unwrap() error     { return context.DeadlineExceeded }
func (throttledSource) Unavailable() bool { return true }

func TestCredentialErrors(t *testing.T) {
	try := func(err error) *ResolveError {
		t.Helper()
		cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"),
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return aws.Credentials{}, err })}
		_, _, rerr := (&Resolver{Config: cfg}).Resolve(context.Background(), parse(t, "X=sm://x\n"))
		var re *ResolveError
		if !errors.As(rerr, &re) {
			t.Fatalf("%v", rerr)
		}
		return re
	}
	re := try(errors.New("no credentials anywhere"))
	if !re.Config() || !strings.Contains(re.Error(), "failed to obtain AWS credentials: no credentials anywhere") {
		t.Errorf("plain: %v", re)
	}
	re = try(fmt.Errorf("wrapped: %w", deniedSource{}))
	if re.Config() || re.AccessDenied() {
		t.Errorf("a classified source error is overridden: %v", re)
	}
	var denied deniedSource
	if !errors.As(re, &denied) {
		t.Error("the source's error is not in the chain")
	}
	// A deadline that passed while credentials were being obtained: the
	// source's error is kept, since it may say more than the deadline.
	re = try(fmt.Errorf("sso: %w", context.DeadlineExceeded))
	if !re.Unavailable() || re.Config() || !strings.Contains(re.Error(), "failed to obtain AWS credentials: sso: context deadline exceeded") {
		t.Errorf("deadline in the source: %v", re)
	}
	re = try(throttledSource{})
	var throttled throttledSource
	if re.Config() || !errors.As(re, &throttled) ||
		!strings.Contains(re.Error(), "failed to obtain AWS credentials: CreateSession throttled; the deadline passed") {
		t.Errorf("deadline after throttling: %v", re)
	}
	re = try(&processcreds.ProviderError{Err: errors.New("parse failed of process output: {\"SecretAccessKey\":\"SNTL\"")})
	if strings.Contains(re.Error(), "SNTL") || !strings.Contains(re.Error(), "credential_process failed") {
		t.Errorf("credential_process: %v", re)
	}
}
