package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/check"
	"github.com/rolesenv/rolesenv/internal/exitcode"
	"github.com/rolesenv/rolesenv/signer"
)

const checkUsage = `Usage: rolesenv check [flags] [-- COMMAND [ARGS...]]

Check everything 'rolesenv run' needs, without starting anything: the env
files, the Roles Anywhere settings, certificate and key, the AWS
configuration, the credentials, every reference of every variable and,
given a COMMAND, that it resolves to an executable. Each check is one row:

  STATUS   ok, warn, fail, or not run (an earlier failure made it impossible)
  CHECK    what was checked, e.g. "reference DB_URL (app.env:3)"
  DETAIL   what was found; never a secret value, a key or credentials

check goes on after a failure wherever it can, so one run lists every
problem it can reach. A denied call names the IAM action and the resource,
with the policy statement that would allow it. check exits 0 when nothing
failed (warnings do not fail it), 1 when something did, 64 on a usage
error.

Check:
  --describe-only        read metadata only (DescribeSecret,
                         DescribeParameters): no secret value is read, so
                         JSON keys, filters and parameter labels are not
                         verified (such rows are ok, with a note)
  --ca FILE              the trust anchor's CA certificate: verify the
                         certificate's chain up to it
  --format FORMAT        text (an aligned table, default) or json

Environment (as for 'rolesenv run'):
  --env-file FILE        template env file; repeatable, later files win;
                         - is stdin
  --from-env             also resolve inherited variables whose whole value
                         is a reference
  --clean-env            only the files' variables, and those --keep-env names
  --keep-env NAME,...    with --clean-env, also pass these inherited variables
  --timeout D            give up after D, retries included (default 30s)

Credentials and logging (as for 'rolesenv run'):
` + credLogUsage + `
Without Roles Anywhere flags, the credentials row names the default chain's
source and asks STS GetCallerIdentity who it is.

--format json writes {"checks": [ROW...], "summary": {"ok": N, "warn": N,
"fail": N, "not_run": N, "exit_code": 0|1}}. A ROW always has "group"
(local, credentials or reference), "check", "status" (ok, warn, fail or
not_run) and "detail"; where they apply also "hint", "file", "line",
"variable", "reference", "version", "note", "code", "action", "resource"
and "statement" (the IAM statement that would allow a denied call).

Examples:
  rolesenv check --env-file /etc/app/app.env -- /usr/bin/app
  rolesenv check --env-file app.env --describe-only --format json
  rolesenv check --env-file app.env --certificate app.pem \
      --private-key app.key --intermediates chain.pem --ca root.pem \
      --trust-anchor-arn ARN --profile-arn ARN --role-arn ARN
  rolesenv check --env-file app.env --format json |
      jq '.checks[] | select(.status == "fail")'

Every flag but --format can also be set with ROLESENV_<NAME> (--env-file is
ROLESENV_ENV_FILE), so check sees the settings a unit gives 'rolesenv run'.
`

func cmdCheck(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("check", checkUsage)
	// The first argument that is not a flag starts the command, as in run.
	fs.SetInterspersed(false)
	var ef envFlags
	var cf credFlags
	var lf logFlags
	ef.register(fs)
	cf.register(fs)
	lf.register(fs)
	describeOnly := fs.Bool("describe-only", false, "read metadata only: no secret value is read")
	caFile := fs.String("ca", "", "the trust anchor's CA certificate")
	format := fs.String("format", "text", "text or json")
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	if err := cf.validate(fs); err != nil {
		return err
	}
	switch *format {
	case "text", "json":
	default:
		return usageErrorf("invalid --format %q (want text or json)", *format)
	}
	if *caFile != "" && !cf.rolesAnywhere() {
		return &usageError{msg: "--ca verifies a Roles Anywhere certificate chain, and no Roles Anywhere setting is given",
			hint: "give --certificate and the other Roles Anywhere flags, or drop --ca"}
	}
	log, err := lf.logger(a.stderr)
	if err != nil {
		return err
	}
	a.log = log

	c := &checker{a: a, ef: &ef, cf: &cf, ca: *caFile, describeOnly: *describeOnly, argv: fs.Args(), now: time.Now()}
	rep := c.run(ctx)
	if *format == "json" {
		err = rep.WriteJSON(a.stdout)
	} else {
		err = rep.WriteText(a.stdout)
	}
	if err != nil {
		return fmt.Errorf("failed to write the report: %w", err)
	}
	if rep.Failed() {
		// The report has said what failed.
		return exitStatus(1)
	}
	return nil
}

// checker runs the checks of one `rolesenv check`.
type checker struct {
	a            *app
	ef           *envFlags
	cf           *credFlags
	ca           string
	describeOnly bool
	argv         []string
	now          time.Time
	rep          check.Report
}

func (c *checker) add(g check.Group, rows ...check.Row) {
	for i := range rows {
		if rows[i].Group == "" {
			rows[i].Group = g
		}
	}
	c.rep.Add(rows...)
}

// run runs every check, in order, each going on after earlier failures
// where it can, within --timeout.
func (c *checker) run(ctx context.Context) *check.Report {
	if c.ef.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.ef.timeout)
		defer cancel()
	}
	tm := c.template()
	var uses []inject.Use
	if tm != nil {
		uses = tm.Uses()
	}
	blocked := ""
	if c.cf.rolesAnywhere() {
		blocked = c.rolesAnywhere()
	}
	// AWS is needed for Roles Anywhere, for references, and when the
	// files could not be parsed (their references are unknown).
	needed := c.cf.rolesAnywhere() || len(uses) > 0 || tm == nil && len(c.ef.envFiles) > 0
	var cfg aws.Config
	var p check.Principal
	reason := ""
	if needed {
		cfg, reason = c.awsConfig(ctx, uses)
		p, reason = c.credentials(ctx, &cfg, reason, blocked)
	}
	env := c.references(ctx, tm, uses, cfg, p, reason)
	if len(c.argv) > 0 {
		c.add(check.Local, check.Command(c.argv, env, c.a.getenv("PATH"))...)
	}
	return &c.rep
}

// template reads and parses the env files: one row per file, one per
// problem in it, and one per malformed reference. It returns nil when the
// files do not parse.
func (c *checker) template() *inject.Template {
	files, err := inject.ReadFiles(c.ef.envFiles, c.a.stdin)
	readErr := map[string]error{}
	for _, e := range flattenErrors(err) {
		var re *inject.ResolveError
		if errors.As(e, &re) {
			readErr[re.File] = re.Err
		}
	}
	tm, err := inject.Parse(files, inject.Options{Environ: c.a.environ, FromEnv: c.ef.fromEnv,
		CleanEnv: c.ef.cleanEnv, KeepEnv: c.ef.keepEnv})
	parseErrs := flattenErrors(err)
	var warnings []string
	if tm != nil {
		warnings = tm.Warnings()
	}
	shown := map[string]bool{}
	placed := map[string]bool{} // warnings shown on a file's row
	for _, name := range c.ef.envFiles {
		label := "env file " + name
		if name == "-" {
			label += " (standard input)"
		}
		if shown[name] {
			continue
		}
		shown[name] = true
		if e := readErr[name]; e != nil {
			c.add(check.Local, check.Row{Check: label, Status: check.Fail, File: name, Detail: "cannot be read: " + e.Error()})
			continue
		}
		bad := false
		for _, e := range parseErrs {
			var re *inject.ResolveError
			if errors.As(e, &re) && re.File == name && re.Ref == "" {
				bad = true
				c.add(check.Local, check.Row{Check: label, Status: check.Fail, File: name, Line: re.Line, Variable: re.Var,
					Detail: templateError(re)})
			}
		}
		for _, w := range warnings {
			if strings.HasPrefix(w, name+":") {
				bad, placed[w] = true, true
				c.add(check.Local, check.Row{Check: label, Status: check.Warn, File: name, Detail: strings.TrimPrefix(w, name+":")})
			}
		}
		if !bad {
			c.add(check.Local, check.Row{Check: label, Status: check.OK, File: name, Detail: "read and parsed"})
		}
	}
	for _, w := range warnings {
		if !placed[w] {
			c.add(check.Local, check.Row{Check: "env files", Status: check.Warn, Detail: w})
		}
	}
	for _, e := range parseErrs {
		var re *inject.ResolveError
		switch {
		case !errors.As(e, &re):
			c.add(check.Local, check.Row{Check: "env files", Status: check.Fail, Detail: e.Error()})
		case re.Ref != "":
			c.add(check.Reference, check.Row{Check: "reference " + varWhere(re), Status: check.Fail,
				File: re.File, Line: re.Line, Variable: re.Var, Reference: re.Ref, Detail: re.Err.Error()})
		case !shown[re.File]:
			c.add(check.Local, check.Row{Check: "environment", Status: check.Fail, Variable: re.Var, Detail: templateError(re)})
		}
	}
	if tm == nil && len(c.ef.envFiles)+len(parseErrs) > 0 {
		c.add(check.Reference, check.Row{Check: "references", Status: check.NotRun,
			Detail: "the template has errors; its references are checked once it parses"})
	}
	return tm
}

func flattenErrors(err error) []error {
	var es inject.Errors
	switch {
	case err == nil:
		return nil
	case errors.As(err, &es):
		return es
	}
	return []error{err}
}

// templateError is a template problem without its file name, which the
// row names already.
func templateError(re *inject.ResolveError) string {
	var parts []string
	if re.Line > 0 {
		parts = append(parts, fmt.Sprintf("line %d", re.Line))
	}
	if re.Var != "" {
		parts = append(parts, re.Var)
	}
	parts = append(parts, re.Err.Error())
	return strings.Join(parts, ": ")
}

func varWhere(re *inject.ResolveError) string {
	loc := re.File
	if re.Line > 0 {
		loc += fmt.Sprintf(":%d", re.Line)
	}
	return fmt.Sprintf("%s (%s)", re.Var, loc)
}

// rolesAnywhere checks the Roles Anywhere settings and the identity's
// files. It returns the name of the first failed check that makes
// CreateSession impossible, or "".
func (c *checker) rolesAnywhere() (blocked string) {
	fail := func(r check.Row) {
		r.Status = check.Fail
		c.add(check.Local, r)
		if blocked == "" {
			blocked = r.Check
		}
	}
	const settings = "Roles Anywhere settings"
	if err := c.cf.requireRolesAnywhere(); err != nil {
		fail(check.Row{Check: settings, Detail: err.Error(), Hint: hintOf(err)})
	} else {
		fips, dual := c.a.endpointVariants(context.Background(), nil)
		region, endpoint, err := signer.CheckConfig(signer.Config{TrustAnchorARN: c.cf.trustAnchorARN,
			ProfileARN: c.cf.profileARN, RoleARN: c.cf.roleARN, RoleSessionName: c.cf.roleSessionName,
			Endpoint: c.a.rolesAnywhereEndpoint(c.cf), UseFIPS: fips, UseDualStack: dual})
		if err != nil {
			fail(check.Row{Check: settings, Detail: err.Error(), Hint: hintOf(err)})
		} else {
			c.add(check.Local, check.Row{Check: settings, Status: check.OK,
				Detail: fmt.Sprintf("trust anchor and profile in %s, account %s; endpoint %s", region, arnAccount(c.cf.trustAnchorARN), endpoint)})
		}
	}
	d := time.Duration(c.cf.sessionDuration) * time.Second
	if d < signer.MinDuration || d > signer.MaxDuration {
		fail(check.Row{Check: "session duration", Detail: fmt.Sprintf("%d seconds is out of bounds (900 to 43200)", c.cf.sessionDuration),
			Hint: "set --session-duration between 900 and the profile's maximum"})
	} else {
		c.add(check.Local, check.Row{Check: "session duration", Status: check.OK,
			Detail: fmt.Sprintf("%d seconds (the profile's maximum is checked by CreateSession)", c.cf.sessionDuration)})
	}
	pass, err := c.a.passphrase(c.cf)
	if err != nil {
		fail(check.Row{Check: "private key passphrase", Detail: err.Error(), Hint: hintOf(err)})
	}
	if c.cf.certificate == "" {
		return blocked
	}
	hw, err := c.a.hardwareKey(c.cf)
	if err != nil {
		fail(check.Row{Check: "TPM key " + c.cf.privateKey, Detail: err.Error(), Hint: hintOf(err)})
		return blocked
	}
	rows, b := check.Identity(check.IdentityFiles{Certificate: c.cf.certificate, PrivateKey: c.cf.privateKey,
		Intermediates: c.cf.intermediates, CA: c.ca, Passphrase: pass, Key: hw}, c.now)
	c.add(check.Local, rows...)
	if blocked == "" {
		blocked = b
	}
	return blocked
}

// hintOf is the first hint in err's tree, as printError shows it, or "".
func hintOf(err error) string {
	var h exitcode.Hinter
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// awsConfig loads the AWS configuration as run does, without credentials
// yet: its region (--region, the SDK's, then the trust anchor's), and
// endpoints. It returns why the credentials cannot be checked, or "".
func (c *checker) awsConfig(ctx context.Context, uses []inject.Use) (aws.Config, string) {
	const name = "AWS configuration"
	cfg, err := c.a.awsConfig(ctx, &credFlags{region: c.cf.region})
	if err != nil {
		c.add(check.Credentials, check.Row{Check: name, Status: check.Fail, Detail: err.Error()})
		return cfg, "the AWS configuration could not be loaded"
	}
	taRegion := arnRegion(c.cf.trustAnchorARN)
	if cfg.Region == "" {
		cfg.Region = taRegion
	}
	if cfg.Region == "" {
		for _, u := range uses {
			if u.Ref.Region == "" {
				c.add(check.Credentials, check.Row{Check: name, Status: check.Fail, Detail: "no AWS region is configured",
					Hint: "set --region, ROLESENV_REGION or AWS_REGION"})
				return cfg, ""
			}
		}
		c.add(check.Credentials, check.Row{Check: name, Status: check.OK, Detail: "no default region; every reference names its own"})
		return cfg, ""
	}
	detail := "region " + cfg.Region
	if taRegion != "" && taRegion != cfg.Region {
		detail += "; IAM Roles Anywhere is called in the trust anchor's region " + taRegion
	}
	c.add(check.Credentials, check.Row{Check: name, Status: check.OK, Detail: detail})
	return cfg, ""
}

// credentials obtains credentials as run would and says whose they are;
// cfg gets them for the references. It returns the caller, and why the
// references cannot be checked, or "".
func (c *checker) credentials(ctx context.Context, cfg *aws.Config, reason, blocked string) (check.Principal, string) {
	p := check.Principal{Region: cfg.Region}
	row := check.Row{Group: check.Credentials, Check: "credentials"}
	switch {
	case blocked != "":
		row.Status, row.Detail = check.NotRun, "the local check \""+blocked+"\" failed"
		c.add(check.Credentials, row)
		return p, "the credentials were not checked"
	case reason != "":
		row.Status, row.Detail = check.NotRun, reason
		c.add(check.Credentials, row)
		return p, reason
	case c.cf.rolesAnywhere():
		return c.rolesAnywhereCredentials(ctx, cfg, row, p)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		row.Status, row.Detail = check.Fail, "the default credential chain found no usable credentials: "+inject.CredentialError(err)
		row.Hint = "set the Roles Anywhere flags, or configure the default chain (AWS_PROFILE, a credential_process, an instance role)"
		c.add(check.Credentials, row)
		return p, "the credentials check failed"
	}
	stsCfg := cfg.Copy()
	if stsCfg.Region == "" {
		stsCfg.Region = "us-east-1" // STS answers in every region; the identity is the same
	}
	out, err := sts.NewFromConfig(stsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		row.Status, row.Detail = check.Fail, "sts:GetCallerIdentity failed: "+inject.CredentialError(err)
		row.Hint = "AWS did not accept the credentials of " + creds.Source
		c.add(check.Credentials, row)
		return p, "the credentials check failed"
	}
	p.ARN = aws.ToString(out.Arn)
	row.Status, row.Detail = check.OK, "default chain ("+creds.Source+"): "+p.ARN
	if creds.CanExpire {
		row.Detail += ", expires " + creds.Expires.UTC().Format(time.RFC3339)
	}
	c.add(check.Credentials, row)
	return p, ""
}

// rolesAnywhereCredentials calls CreateSession with the certificate.
func (c *checker) rolesAnywhereCredentials(ctx context.Context, cfg *aws.Config, row check.Row, p check.Principal) (check.Principal, string) {
	row.Action = "rolesanywhere:CreateSession"
	client, err := c.a.rolesAnywhereClient(ctx, c.cf, cfg.ConfigSources)
	if err == nil {
		prov := signer.NewProvider(client, signer.ProviderOptions{Logger: c.a.log})
		var creds *signer.Credentials
		if creds, err = prov.Credentials(ctx); err == nil {
			cfg.Credentials = prov
			p.ARN = creds.AssumedRoleARN
			row.Status = check.OK
			row.Detail = "IAM Roles Anywhere: " + creds.AssumedRoleARN + ", expires " + creds.Expiration.UTC().Format(time.RFC3339)
			c.add(check.Credentials, row)
			return p, ""
		}
	}
	row.Status, row.Detail, row.Hint = check.Fail, err.Error(), hintOf(err)
	var apiErr *signer.APIError
	if errors.As(err, &apiErr) {
		row.Code, row.Hint = apiErr.Code, apiErr.Hint()
		if apiErr.AccessDenied() {
			row.Hint = createSessionHint(client)
		}
	}
	c.add(check.Credentials, row)
	return p, "the credentials check failed"
}

// createSessionHint explains a refused CreateSession: no identity policy
// statement helps, the trust anchor and the role's trust policy decide.
func createSessionHint(client *signer.Client) string {
	h := "check that the trust anchor's CA issued the certificate, directly or through --intermediates " +
		"(--ca FILE with the trust anchor's CA certificate verifies the chain locally), and that the role's trust policy " +
		"allows rolesanywhere.amazonaws.com to call sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity " +
		"under conditions that match the certificate"
	if client == nil {
		return h
	}
	if id, err := client.Identity(); err == nil {
		h += fmt.Sprintf(" (subject %q, issuer %q)", id.Certificate.Subject.String(), id.Certificate.Issuer.String())
	}
	return h
}

// references checks every reference, one row per variable and
// reference, and returns the command's environment when it renders (for
// the command check), else nil.
func (c *checker) references(ctx context.Context, tm *inject.Template, uses []inject.Use, cfg aws.Config, p check.Principal, reason string) []string {
	if tm == nil {
		return nil
	}
	if len(uses) == 0 {
		env, err := tm.Render(inject.NewValues())
		if err != nil {
			return nil
		}
		if len(c.ef.envFiles) > 0 || c.ef.fromEnv {
			c.add(check.Reference, check.Row{Check: "references", Status: check.OK, Detail: "none to resolve"})
		}
		return env.Environ()
	}
	switch {
	case reason != "":
		c.add(check.Reference, check.Skipped(uses, reason)...)
		return nil
	case c.describeOnly:
		c.add(check.Reference, check.Describe(ctx, cfg, uses, p)...)
		return nil
	}
	vals := check.Fetch(ctx, &inject.Resolver{Config: cfg, Logger: c.a.log}, tm.Fetches())
	c.add(check.Reference, check.Resolved(tm, uses, vals, p)...)
	env, err := tm.Render(vals)
	if err != nil {
		return nil
	}
	return env.Environ()
}
