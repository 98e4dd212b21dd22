package main

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// What package initialisation costs, by package, from GODEBUG=inittrace
// runs of `rolesenv version` (overhead.go), grouped by what the packages
// are for, with the reason each group stays.

// initGroup is a set of packages, by import path prefix, and why rolesenv
// links them.
type initGroup struct {
	name     string
	prefixes []string
	why      string
}

// initGroups, the first match wins; the last group takes the rest.
var initGroups = []initGroup{
	{"Parameter Store (`service/ssm`)", []string{"github.com/aws/aws-sdk-go-v2/service/ssm"},
		"`ssm://` references (GetParameters, GetParameter, DescribeParameters for `check`). The generated `schemas` package builds the schema of every shape of the service's 150 operations, pattern traits compiled to regular expressions included, whatever the operations called; the SDK has no per-operation package and no lazy schemas, and a hand-written client is ruled out. It stays until the SDK builds schemas on first use."},
	{"Secrets Manager (`service/secretsmanager`)", []string{"github.com/aws/aws-sdk-go-v2/service/secretsmanager"},
		"`sm://` references. The same generated schemas and endpoint tables, for a smaller service."},
	{"STS (`service/sts`)", []string{"github.com/aws/aws-sdk-go-v2/service/sts"},
		"The default credential chain (`config`: assume-role profiles, web identity) and `rolesenv check` (GetCallerIdentity)."},
	{"SSO, SSO OIDC, sign-in (`service/sso`, `ssooidc`, `signin`)", []string{"github.com/aws/aws-sdk-go-v2/service/sso", "github.com/aws/aws-sdk-go-v2/service/signin"},
		"Linked by `config` for the default credential chain's SSO and `aws login` profiles; `config` cannot be built without them, and users without Roles Anywhere rely on that chain."},
	{"configuration and credentials (`config`, `credentials`, IMDS)", []string{"github.com/aws/aws-sdk-go-v2/config", "github.com/aws/aws-sdk-go-v2/credentials", "github.com/aws/aws-sdk-go-v2/feature"},
		"The SDK's shared configuration and credential chain, which rolesenv follows."},
	{"the SDK's core and smithy-go", []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"},
		"Signing, retries, endpoints rules, protocols: every client's machinery."},
	{"rolesenv's own packages", []string{"github.com/rolesenv/rolesenv"},
		"Mostly `internal/awsdev`, the emulator of `rolesenv dev` (its operation table), and `signer`'s ARN patterns."},
	{"Go's standard library and the rest", []string{""},
		"The runtime, crypto, net/http, TLS, TPM and PKCS#12 support."},
}

func groupOf(pkg string) int {
	for i, g := range initGroups {
		for _, p := range g.prefixes {
			if strings.HasPrefix(pkg, p) {
				return i
			}
		}
	}
	return len(initGroups) - 1
}

// initCost is one group's median cost over the runs.
type initCost struct {
	group       int
	time        time.Duration
	bytes, pkgs int64
	top         string // the group's costliest package
	topTime     time.Duration
}

// initCosts sums each run's packages by group and takes each group's
// median over the runs.
func initCosts(runs []initStats) []initCost {
	perGroup := make([]sample, len(initGroups))
	bytes := make([][]int64, len(initGroups))
	pkgTimes := map[string]sample{}
	pkgCount := make([]map[string]bool, len(initGroups))
	for _, run := range runs {
		sums := make([]time.Duration, len(initGroups))
		bsums := make([]int64, len(initGroups))
		for pkg, st := range run.pkgs {
			g := groupOf(pkg)
			sums[g] += st.time
			bsums[g] += st.bytes
			pkgTimes[pkg] = append(pkgTimes[pkg], st.time)
			if pkgCount[g] == nil {
				pkgCount[g] = map[string]bool{}
			}
			pkgCount[g][pkg] = true
		}
		for g := range sums {
			perGroup[g] = append(perGroup[g], sums[g])
			bytes[g] = append(bytes[g], bsums[g])
		}
	}
	var out []initCost
	for g := range initGroups {
		if len(pkgCount[g]) == 0 {
			continue
		}
		c := initCost{group: g, time: perGroup[g].median(), pkgs: int64(len(pkgCount[g]))}
		slices.Sort(bytes[g])
		c.bytes = bytes[g][len(bytes[g])/2]
		for pkg := range pkgCount[g] {
			if t := pkgTimes[pkg].median(); t > c.topTime || (t == c.topTime && pkg < c.top) {
				c.top, c.topTime = pkg, t
			}
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b initCost) int { return cmp.Compare(b.time, a.time) })
	return out
}

func (r *report) writeInitCosts(p printer) {
	o := r.overhead
	if o == nil || len(o.initRuns) == 0 {
		return
	}
	costs := initCosts(o.initRuns)
	p("## Package initialisation\n\n")
	p("What every command pays before `main`, `version` and `credential-process` included: Go initialises every package the binary links, whatever the command runs, so no arrangement of rolesenv's own packages can spare a command the SDK packages another command needs. Medians of %d runs of `GODEBUG=inittrace=1 rolesenv version`, per group of packages (the sum of their `clock` times in a run); %s ms and %.1f MB in all in the median run.\n\n",
		len(o.initRuns), ms(o.initTime), float64(o.init.bytes)/1e6)
	p("| packages | time | allocated | packages | costliest | why it stays |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, c := range costs {
		g := initGroups[c.group]
		p("| %s | %s ms | %.2f MB | %d | `%s` (%s ms) | %s |\n", g.name, ms(c.time), float64(c.bytes)/1e6, c.pkgs,
			strings.TrimPrefix(c.top, "github.com/aws/aws-sdk-go-v2/"), ms(c.topTime), g.why)
	}
	p("\nWhat the SDK offers against it, checked at this release: nothing that keeps the generated clients. Every service package initialises its `schemas` and endpoint tables eagerly, `config` links STS, SSO, SSO OIDC and sign-in for its credential chain, and there is no build tag to leave them out. rolesenv already skips everything else a start does not need (no roots without TLS, no AWS configuration without references, no garbage collection before the exec); revisit this table when the SDK changes how its packages initialise.\n\n")
}
