package check

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/rolesenv/rolesenv/inject"
)

// The actions --describe-only uses. None of them returns a value.
const (
	actionDescribeSecret     = "secretsmanager:DescribeSecret"
	actionListVersions       = "secretsmanager:ListSecretVersionIds"
	actionDescribeParameters = "ssm:DescribeParameters"
)

// ssmVersionsKept is how many versions of a parameter Parameter Store
// keeps: the oldest is deleted when a 101st is written.
const ssmVersionsKept = 100

// Describe checks every use from metadata alone, never reading a value:
// DescribeSecret for secrets (the pinned stage or version exists, the
// secret is not scheduled for deletion; ListSecretVersionIds only for a
// pinned version that has no stage) and DescribeParameters for
// parameters (the parameter exists, a pinned version is among the ones
// kept). What needs the value (a JSON key or pointer, a filter, a
// parameter label, decryption) is not verified: such rows are ok with a
// note saying so.
func Describe(ctx context.Context, cfg aws.Config, uses []inject.Use, p Principal) []Row {
	d := &describer{cfg: cfg, p: p, results: map[inject.Fetch]described{}}
	var fetches []inject.Fetch
	seen := map[inject.Fetch]bool{}
	for _, u := range uses {
		if !seen[u.Ref.Fetch] {
			seen[u.Ref.Fetch] = true
			fetches = append(fetches, u.Ref.Fetch)
		}
	}
	d.run(ctx, fetches)
	rows := make([]Row, 0, len(uses))
	for _, u := range uses {
		res := d.results[u.Ref.Fetch]
		r := useRow(u, res.status, res.detail)
		r.Version, r.Code, r.Hint = res.version, res.code, res.hint
		if res.denied {
			denial(&r, res.failure, res.action, res.resource, p)
			r.Detail = u.Text + ": " + deniedDetail(r)
		}
		if r.Status == OK {
			r.Note = unverified(u)
			if res.note != "" {
				r.Note = strings.TrimPrefix(r.Note+"; "+res.note, "; ")
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// described is what metadata said about one fetch.
type described struct {
	status  Status
	detail  string
	version string
	note    string
	code    string
	hint    string
	// A denial: the failure, the action called and the resource to name
	// when AWS's message does not.
	denied   bool
	failure  failure
	action   string
	resource string
}

type describer struct {
	cfg aws.Config
	p   Principal

	mu      sync.Mutex
	results map[inject.Fetch]described
}

func (d *describer) set(f inject.Fetch, r described) {
	d.mu.Lock()
	d.results[f] = r
	d.mu.Unlock()
}

func (d *describer) region(f inject.Fetch) string {
	if f.Region != "" {
		return f.Region
	}
	return d.cfg.Region
}

// run describes the fetches: one DescribeSecret per secret (whatever the
// stages asked of it) and one DescribeParameters per 50 parameter names
// of a region, at most inject.DefaultParallel calls at a time.
func (d *describer) run(ctx context.Context, fetches []inject.Fetch) {
	sem := make(chan struct{}, inject.DefaultParallel)
	var wg sync.WaitGroup
	for _, j := range d.jobs(ctx, fetches) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			j()
		}()
	}
	wg.Wait()
}

// jobs groups the fetches into the calls that describe them: one per
// secret, one per 50 parameters of a region. A fetch without a region
// fails at once.
func (d *describer) jobs(ctx context.Context, fetches []inject.Fetch) []func() {
	type key struct{ region, id string }
	secrets := map[key][]inject.Fetch{}
	var secretKeys []key
	params := map[string][]inject.Fetch{}
	var regions []string
	for _, f := range fetches {
		region := d.region(f)
		switch {
		case region == "":
			d.set(f, described{status: Fail, detail: "no AWS region is configured", hint: "set --region or AWS_REGION"})
		case f.Service == inject.ParameterStore:
			if params[region] == nil {
				regions = append(regions, region)
			}
			params[region] = append(params[region], f)
		default:
			k := key{region, f.ID}
			if secrets[k] == nil {
				secretKeys = append(secretKeys, k)
			}
			secrets[k] = append(secrets[k], f)
		}
	}
	var jobs []func()
	for _, k := range secretKeys {
		jobs = append(jobs, func() { d.secret(ctx, k.region, k.id, secrets[k]) })
	}
	for _, region := range regions {
		for list := params[region]; len(list) > 0; {
			chunk := list[:min(len(list), 50)]
			jobs = append(jobs, func() { d.parameters(ctx, region, chunk) })
			list = list[len(chunk):]
		}
	}
	return jobs
}

// secret describes one secret for every stage or version asked of it.
func (d *describer) secret(ctx context.Context, region, id string, fs []inject.Fetch) {
	c := secretsmanager.NewFromConfig(d.cfg, func(o *secretsmanager.Options) { o.Region = region })
	out, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		d.setAll(fs, d.secretFailed(err, region, id, fs[0]))
		return
	}
	if out.DeletedDate != nil {
		d.setAll(fs, described{status: Fail, detail: "the secret is scheduled for deletion on " + stamp(*out.DeletedDate),
			hint: "restore it with RestoreSecret, or point the reference at another secret"})
		return
	}
	var deprecated map[string]bool // versions without a stage, listed on demand
	for _, f := range fs {
		if f.VersionID == "" {
			d.set(f, stageOf(out.VersionIdsToStages, f.Stage))
			continue
		}
		if stages, ok := out.VersionIdsToStages[f.VersionID]; ok {
			d.set(f, described{status: OK, version: shortID(f.VersionID),
				detail: "exists: version " + shortID(f.VersionID) + stageList(stages)})
			continue
		}
		// DescribeSecret lists only versions with a stage; a deprecated
		// version can still be read until Secrets Manager prunes it.
		if deprecated == nil {
			var r described
			if deprecated, r = d.deprecatedVersions(ctx, c, id); deprecated == nil {
				d.set(f, r)
				continue
			}
		}
		d.set(f, deprecatedVersion(f, deprecated))
	}
}

func (d *describer) setAll(fs []inject.Fetch, r described) {
	for _, f := range fs {
		d.set(f, r)
	}
}

// secretFailed is a DescribeSecret that AWS refused or failed; f is one
// of the fetches it was for.
func (d *describer) secretFailed(err error, region, id string, f inject.Fetch) described {
	r := failed(err, actionDescribeSecret, id)
	if r.denied {
		r.resource = resourceARN(f, d.regioned(region))
	}
	if !r.denied && r.failure.notFound {
		r.hint = notFoundHint(f)
	}
	return r
}

// deprecatedVersion is a pinned version that no stage holds: it exists if
// it is among the deprecated versions.
func deprecatedVersion(f inject.Fetch, deprecated map[string]bool) described {
	if deprecated[f.VersionID] {
		return described{status: OK, version: shortID(f.VersionID),
			detail: "exists: version " + shortID(f.VersionID) + " (deprecated: it has no stage)"}
	}
	return described{status: Fail, code: "ResourceNotFoundException",
		detail: "the secret has no version " + f.VersionID, hint: notFoundHint(f)}
}

func (d *describer) regioned(region string) Principal {
	p := d.p
	p.Region = region
	return p
}

// stageOf finds the version that holds stage.
func stageOf(versions map[string][]string, stage string) described {
	ids := make([]string, 0, len(versions))
	for id := range versions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if slices.Contains(versions[id], stage) {
			return described{status: OK, version: shortID(id), detail: "exists: version " + shortID(id) + stageList(versions[id])}
		}
	}
	return described{status: Fail, code: "ResourceNotFoundException", detail: "no version of the secret has the stage " + stage,
		hint: "move the stage to a version (UpdateSecretVersionStage), or pin another stage"}
}

func stageList(stages []string) string {
	if len(stages) == 0 {
		return ""
	}
	s := slices.Clone(stages)
	slices.Sort(s)
	return " (" + strings.Join(s, ", ") + ")"
}

// deprecatedVersions lists every version id of a secret, those without
// a stage included. On failure it returns nil and the row to show: the
// version cannot be verified, which is a warning, not a failure.
func (d *describer) deprecatedVersions(ctx context.Context, c *secretsmanager.Client, id string) (map[string]bool, described) {
	all := map[string]bool{}
	in := &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(id), IncludeDeprecated: aws.Bool(true)}
	for {
		out, err := c.ListSecretVersionIds(ctx, in)
		if err != nil {
			fl := describe(err)
			return nil, described{status: Warn, code: fl.code,
				detail: "not verified: DescribeSecret does not list the version (it has no stage) and " +
					actionListVersions + " failed: " + errorText(fl, err),
				hint: "allow " + actionListVersions + " on the secret to verify pinned versions without a stage"}
		}
		for _, v := range out.Versions {
			all[aws.ToString(v.VersionId)] = true
		}
		if aws.ToString(out.NextToken) == "" {
			return all, described{}
		}
		in.NextToken = out.NextToken
	}
}

// parameters describes up to 50 parameters of one region.
func (d *describer) parameters(ctx context.Context, region string, fs []inject.Fetch) {
	c := ssm.NewFromConfig(d.cfg, func(o *ssm.Options) { o.Region = region })
	var names []string
	for _, f := range fs {
		if n := paramName(f.ID); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	found := map[string]ssmtypes.ParameterMetadata{}
	in := &ssm.DescribeParametersInput{
		ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Name"), Option: aws.String("Equals"), Values: names}},
		MaxResults:       aws.Int32(50),
	}
	for {
		out, err := c.DescribeParameters(ctx, in)
		if err != nil {
			r := failed(err, actionDescribeParameters, "*")
			for _, f := range fs {
				d.set(f, r)
			}
			return
		}
		for _, p := range out.Parameters {
			found[strings.TrimPrefix(aws.ToString(p.Name), "/")] = p
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	for _, f := range fs {
		d.set(f, d.parameter(f, found))
	}
}

func (d *describer) parameter(f inject.Fetch, found map[string]ssmtypes.ParameterMetadata) described {
	name := paramName(f.ID)
	p, ok := found[strings.TrimPrefix(name, "/")]
	if !ok {
		if acct := arnAccount(f.ID); acct != "" && acct != d.p.account() {
			return described{status: Warn, detail: "not verified: DescribeParameters lists the parameters of the caller's account only"}
		}
		return described{status: Fail, code: "ParameterNotFound", detail: "no parameter " + name + " in " + d.region(f), hint: notFoundHint(f)}
	}
	latest := p.Version
	v := strconv.FormatInt(latest, 10)
	switch {
	case f.Version != 0 && (f.Version > latest || f.Version <= latest-ssmVersionsKept):
		return described{status: Fail, code: "ParameterVersionNotFound",
			detail: fmt.Sprintf("the parameter has no version %d (the latest is %d)", f.Version, latest), hint: notFoundHint(f)}
	case f.Version != 0:
		return described{status: OK, version: strconv.FormatInt(f.Version, 10),
			detail: fmt.Sprintf("exists: version %d (the latest is %d)", f.Version, latest)}
	case f.Label != "":
		return described{status: OK, detail: "exists: latest version " + v,
			note: fmt.Sprintf("label %q not verified: DescribeParameters does not list labels", f.Label)}
	}
	return described{status: OK, version: v, detail: "exists: version " + v}
}

// paramName is the parameter name of an id: the name itself, or the
// name an ARN holds (arn:...:parameter/a/b names /a/b, parameter/a names a).
func paramName(id string) string {
	f := arnFields(id)
	if f == nil {
		return id
	}
	n := strings.TrimPrefix(f[5], "parameter")
	if strings.Count(n, "/") > 1 {
		return n
	}
	return strings.TrimPrefix(n, "/")
}

func arnAccount(id string) string {
	if f := arnFields(id); f != nil {
		return f[4]
	}
	return ""
}

// failed is the result of a describe call that AWS refused or failed.
func failed(err error, action, resource string) described {
	fl := describe(err)
	r := described{status: Fail, code: fl.code, detail: action + " failed: " + errorText(fl, err), failure: fl}
	if errors.Is(err, context.DeadlineExceeded) {
		r.detail, r.hint = action+" failed: "+deadlineDetail, DeadlineHint
	}
	if fl.denied {
		r.denied, r.action, r.resource = true, action, resource
	}
	return r
}

// errorText is an AWS error for a row: code and message, or the SDK's
// own text when AWS did not answer.
func errorText(fl failure, err error) string {
	switch {
	case fl.code != "" && fl.msg != "":
		return fl.code + ": " + fl.msg
	case fl.code != "":
		return fl.code
	}
	return oneLine(err.Error())
}
