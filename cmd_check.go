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
  --timeout D            one deadline for the whole check, retries included
                         (default 30s); what it cuts short says so

Files (as for 'rolesenv run'):
  --template SRC:DEST[:MODE]
                         check that SRC reads and parses (repeatable)
  --secrets-dir DIR      check that run could write files there (default: a
                         new directory under /dev/shm); a row when files are used

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
	var ff fileFlags
	ef.register(fs)
	ff.register(fs, false)
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

	c := &checker{a: a, ef: &ef, ff: &ff, cf: &cf, ca: *caFile, describeOnly: *describeOnly, argv: fs.Args(), now: time.Now()}
	rep := c.run(ctx)
	return c.write(rep, *format)
}

// write writes the report and says whether anything failed.
func (c *checker) write(rep *check.Report, format string) error {
	var err error
	if format == "json" {
		err = rep.WriteJSON(c.a.stdout)
	} else {
		err = rep.WriteText(c.a.stdout)
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

// checker runs the checks of one `rolesenv check`. Its stages run in
// order, each adding its rows to rep and leaving on the checker what the
// later stages need.
type checker struct {
	a            *app
	ef           *envFlags
	ff           *fileFlags
	cf           *credFlags
	ca           string
	describeOnly bool
	argv         []string
	now          time.Time
	rep          check.Report

	// What the stages found, in the order they run.
	tm        *inject.Template // the parsed env files; nil when they do not parse
	uses      []inject.Use     // tm's references
	blocked   string           // the first failed local check that rules out CreateSession
	cfg       aws.Config       // with the credentials once they are checked
	principal check.Principal  // who the credentials are
	notRun    string           // why the AWS checks still to come cannot run; "" when they can
	env       []string         // the command's environment, when it renders
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
// where it can. --timeout is one deadline for the whole check: the checks
// that talk to AWS after it has passed are not run, and say so.
func (c *checker) run(ctx context.Context) *check.Report {
	if c.ef.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.ef.timeout)
		defer cancel()
	}
	c.template()
	if c.cf.rolesAnywhere() {
		c.rolesAnywhere(ctx)
	}
	if c.needsAWS() {
		c.awsConfig(ctx)
		c.credentials(ctx)
	}
	c.references(ctx)
	if len(c.argv) > 0 {
		c.add(check.Local, check.Command(c.argv, c.env, c.a.getenv("PATH"))...)
	}
	return &c.rep
}

// needsAWS: AWS is needed for Roles Anywhere, for references, and when
// the files could not be parsed (their references are unknown).
func (c *checker) needsAWS() bool {
	return c.cf.rolesAnywhere() || len(c.uses) > 0 || c.tm == nil && len(c.ef.envFiles) > 0
}

// expired reports whether --timeout has passed, and then makes it the
// reason the checks still to come are not run.
func (c *checker) expired(ctx context.Context) bool {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return false
	}
	if c.notRun == "" {
		c.notRun = fmt.Sprintf("the --timeout of %v passed before this check", c.ef.timeout)
	}
	return true
}

// timedOut completes a failed row whose call --timeout cut short.
func (c *checker) timedOut(r *check.Row, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		r.Detail += fmt.Sprintf(" (the --timeout of %v passed)", c.ef.timeout)
		r.Hint = check.DeadlineHint
	}
}

// template reads and parses the env files: one row per file, one per
// problem in it, and one per malformed reference. c.tm stays nil when the
// files do not parse.
func (c *checker) template() {
	files, err := inject.ReadFiles(c.ef.envFiles, c.a.stdin)
	readErr := map[string]error{}
	for _, e := range flattenErrors(err) {
		var re *inject.ResolveError
		if errors.As(e, &re) {
			readErr[re.File] = re.Err
		}
	}
	opts := inject.Options{Environ: c.a.environ, FromEnv: c.ef.fromEnv, CleanEnv: c.ef.cleanEnv, KeepEnv: c.ef.keepEnv}
	c.fileOptions(&opts)
	if err := credentialsDirEnv(&opts); err != nil {
		c.add(check.Local, check.Row{Check: "templates", Status: check.Fail, Detail: err.Error(), Hint: err.(*configError).Hint()})
	}
	tm, err := inject.Parse(files, opts)
	parseErrs := flattenErrors(err)
	var warnings []string
	if tm != nil {
		warnings = tm.Warnings()
		c.tm, c.uses = tm, tm.Uses()
	}
	shown, placed := c.fileRows(readErr, parseErrs, warnings)
	c.templateRows(opts.Templates, parseErrs, shown)
	for _, w := range warnings {
		if !placed[w] {
			c.add(check.Local, check.Row{Check: "env files", Status: check.Warn, Detail: w})
		}
	}
	c.parseErrorRows(parseErrs, shown)
	c.secretsDirRow()
	if tm == nil && len(c.ef.envFiles)+len(parseErrs) > 0 {
		c.add(check.Reference, check.Row{Check: "references", Status: check.NotRun,
			Detail: "the template has errors; its references are checked once it parses"})
	}
}

// fileRows are the rows of each env file: cannot be read, its template
// errors and warnings, or read and parsed. It returns the files shown and
// the warnings placed on a file's row.
func (c *checker) fileRows(readErr map[string]error, parseErrs []error, warnings []string) (shown, placed map[string]bool) {
	shown, placed = map[string]bool{}, map[string]bool{}
	for _, name := range c.ef.envFiles {
		if shown[name] {
			continue
		}
		shown[name] = true
		label := "env file " + name
		if name == "-" {
			label += " (standard input)"
		}
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
	return shown, placed
}

// parseErrorRows are the template errors no file's row shows: malformed
// references, and problems of the environment or of no file.
func (c *checker) parseErrorRows(parseErrs []error, shown map[string]bool) {
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
// files. c.blocked names the first failed check that makes CreateSession
// impossible.
func (c *checker) rolesAnywhere(ctx context.Context) {
	c.settings(ctx)
	c.sessionDuration()
	pass, err := c.a.passphrase(c.cf)
	if err != nil {
		c.localFailure(check.Row{Check: "private key passphrase", Detail: err.Error(), Hint: hintOf(err)})
	}
	if c.cf.certificate == "" {
		return
	}
	hw, err := c.a.hardwareKey(c.cf)
	if err != nil {
		c.localFailure(check.Row{Check: "TPM key " + c.cf.privateKey, Detail: err.Error(), Hint: hintOf(err)})
		return
	}
	files := check.IdentityFiles{Certificate: c.cf.certificate, PrivateKey: c.cf.privateKey,
		Intermediates: c.cf.intermediates, CA: c.ca, Passphrase: pass, Key: hw}
	if !c.tokenObjects(&files) {
		return
	}
	rows, blocked := check.Identity(files, c.now)
	c.add(check.Local, rows...)
	if c.blocked == "" {
		c.blocked = blocked
	}
}

// localFailure adds a failed local row that rules out CreateSession.
func (c *checker) localFailure(r check.Row) {
	r.Status = check.Fail
	c.add(check.Local, r)
	if c.blocked == "" {
		c.blocked = r.Check
	}
}

// settings checks the ARNs, the session name and the endpoint as the
// signer will use them.
func (c *checker) settings(ctx context.Context) {
	const name = "Roles Anywhere settings"
	if err := c.cf.requireRolesAnywhere(); err != nil {
		c.localFailure(check.Row{Check: name, Detail: err.Error(), Hint: hintOf(err)})
		return
	}
	fips, dual := c.a.endpointVariants(ctx, nil)
	region, endpoint, err := signer.CheckConfig(signer.Config{TrustAnchorARN: c.cf.trustAnchorARN,
		ProfileARN: c.cf.profileARN, RoleARN: c.cf.roleARN, RoleSessionName: c.cf.roleSessionName,
		Endpoint: c.a.rolesAnywhereEndpoint(c.cf), UseFIPS: fips, UseDualStack: dual})
	if err != nil {
		c.localFailure(check.Row{Check: name, Detail: err.Error(), Hint: hintOf(err)})
		return
	}
	c.add(check.Local, check.Row{Check: name, Status: check.OK,
		Detail: fmt.Sprintf("trust anchor and profile in %s, account %s; endpoint %s", region, arnAccount(c.cf.trustAnchorARN), endpoint)})
}

// sessionDuration checks --session-duration against the signer's bounds;
// the profile's own maximum is CreateSession's to check.
func (c *checker) sessionDuration() {
	const name = "session duration"
	lo, hi := int(signer.MinDuration/time.Second), int(signer.MaxDuration/time.Second)
	if d := time.Duration(c.cf.sessionDuration) * time.Second; d < signer.MinDuration || d > signer.MaxDuration {
		c.localFailure(check.Row{Check: name, Detail: fmt.Sprintf("%d seconds is out of bounds (%d to %d)", c.cf.sessionDuration, lo, hi),
			Hint: fmt.Sprintf("set --session-duration between %d and the profile's maximum", lo)})
		return
	}
	c.add(check.Local, check.Row{Check: name, Status: check.OK,
		Detail: fmt.Sprintf("%d seconds (the profile's maximum is checked by CreateSession)", c.cf.sessionDuration)})
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
// endpoints, into c.cfg.
func (c *checker) awsConfig(ctx context.Context) {
	const name = "AWS configuration"
	cfg, err := c.a.awsConfig(ctx, &credFlags{region: c.cf.region})
	if err != nil {
		c.add(check.Credentials, check.Row{Check: name, Status: check.Fail, Detail: err.Error()})
		c.notRun = "the AWS configuration could not be loaded"
		return
	}
	taRegion := arnRegion(c.cf.trustAnchorARN)
	if cfg.Region == "" {
		cfg.Region = taRegion
	}
	c.cfg = cfg
	if cfg.Region == "" {
		c.noRegion(name)
		return
	}
	detail := "region " + cfg.Region
	if taRegion != "" && taRegion != cfg.Region {
		detail += "; IAM Roles Anywhere is called in the trust anchor's region " + taRegion
	}
	c.add(check.Credentials, check.Row{Check: name, Status: check.OK, Detail: detail})
}

// noRegion is the row of a configuration without a region: a failure
// when a reference needs the default region.
func (c *checker) noRegion(name string) {
	for _, u := range c.uses {
		if u.Ref.Region == "" {
			c.add(check.Credentials, check.Row{Check: name, Status: check.Fail, Detail: "no AWS region is configured",
				Hint: "set --region, ROLESENV_REGION or AWS_REGION"})
			return
		}
	}
	c.add(check.Credentials, check.Row{Check: name, Status: check.OK, Detail: "no default region; every reference names its own"})
}

// credentials obtains credentials as run would and says whose they are:
// c.cfg gets them and c.principal names them for the references.
func (c *checker) credentials(ctx context.Context) {
	c.principal = check.Principal{Region: c.cfg.Region}
	row := check.Row{Group: check.Credentials, Check: "credentials"}
	switch {
	case c.blocked != "":
		row.Status, row.Detail = check.NotRun, "the local check \""+c.blocked+"\" failed"
		c.add(check.Credentials, row)
		c.notRun = "the credentials were not checked"
		return
	case c.expired(ctx) || c.notRun != "":
		row.Status, row.Detail = check.NotRun, c.notRun
		c.add(check.Credentials, row)
		return
	case c.cf.rolesAnywhere():
		row = c.rolesAnywhereCredentials(ctx, row)
	default:
		row = c.defaultChainCredentials(ctx, row)
	}
	c.add(check.Credentials, row)
	if row.Status == check.Fail && !c.expired(ctx) {
		c.notRun = "the credentials check failed"
	}
}

// defaultChainCredentials asks the default chain for credentials and STS
// whose they are.
func (c *checker) defaultChainCredentials(ctx context.Context, row check.Row) check.Row {
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		row.Status, row.Detail = check.Fail, "the default credential chain found no usable credentials: "+inject.CredentialError(err)
		row.Hint = "set the Roles Anywhere flags, or configure the default chain (AWS_PROFILE, a credential_process, an instance role)"
		c.timedOut(&row, err)
		return row
	}
	stsCfg := c.cfg.Copy()
	if stsCfg.Region == "" {
		stsCfg.Region = "us-east-1" // STS answers in every region; the identity is the same
	}
	out, err := sts.NewFromConfig(stsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		row.Status, row.Detail = check.Fail, "sts:GetCallerIdentity failed: "+inject.CredentialError(err)
		row.Hint = "AWS did not accept the credentials of " + creds.Source
		c.timedOut(&row, err)
		return row
	}
	c.principal.ARN = aws.ToString(out.Arn)
	row.Status, row.Detail = check.OK, "default chain ("+creds.Source+"): "+c.principal.ARN
	if creds.CanExpire {
		row.Detail += ", expires " + creds.Expires.UTC().Format(time.RFC3339)
	}
	return row
}

// rolesAnywhereCredentials calls CreateSession with the certificate.
func (c *checker) rolesAnywhereCredentials(ctx context.Context, row check.Row) check.Row {
	row.Action = "rolesanywhere:CreateSession"
	client, err := c.a.rolesAnywhereClient(ctx, c.cf, c.cfg.ConfigSources)
	if err == nil {
		prov := signer.NewProvider(client, signer.ProviderOptions{Logger: c.a.log})
		var creds *signer.Credentials
		if creds, err = prov.Credentials(ctx); err == nil {
			c.cfg.Credentials = prov
			c.principal.ARN = creds.AssumedRoleARN
			row.Status = check.OK
			row.Detail = "IAM Roles Anywhere: " + creds.AssumedRoleARN + ", expires " + creds.Expiration.UTC().Format(time.RFC3339)
			return row
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
	c.timedOut(&row, err)
	return row
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
// reference, and keeps the command's environment in c.env when it renders
// (for the command check).
func (c *checker) references(ctx context.Context) {
	switch {
	case c.tm == nil:
		return
	case len(c.uses) == 0:
		c.noReferences()
		return
	case c.expired(ctx) || c.notRun != "":
		c.add(check.Reference, check.Skipped(c.uses, c.notRun)...)
		return
	case c.describeOnly:
		c.add(check.Reference, check.Describe(ctx, c.cfg, c.uses, c.principal)...)
		return
	}
	vals := check.Fetch(ctx, &inject.Resolver{Config: c.cfg, Logger: c.a.log}, c.tm.Fetches())
	c.add(check.Reference, check.Resolved(c.tm, c.uses, vals, c.principal)...)
	if env, err := c.tm.Render(vals); err == nil {
		c.env = env.Environ()
	}
}

// noReferences is the row of files with nothing to resolve.
func (c *checker) noReferences() {
	env, err := c.tm.Render(inject.NewValues())
	if err != nil {
		return
	}
	if len(c.ef.envFiles) > 0 || c.ef.fromEnv {
		c.add(check.Reference, check.Row{Check: "references", Status: check.OK, Detail: "none to resolve"})
	}
	c.env = env.Environ()
}
