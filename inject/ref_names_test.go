package inject

import (
	"strings"
	"testing"
)

// Characters AWS documents for names: Secrets Manager allows ASCII
// letters, digits and /_+=.@-, plus '!' in the names of secrets other
// services manage (rds!db-<uuid>); Parameter Store allows letters, digits
// and _.-, with '/' between hierarchy levels.
const (
	alnum       = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secretChars = alnum + "/_+=.@-!"
	paramChars  = alnum + "_.-/"
)

// partitions are AWS's partitions, each with one of its regions.
var partitions = [][2]string{
	{"aws", "us-east-1"}, {"aws-cn", "cn-north-1"}, {"aws-us-gov", "us-gov-west-1"},
	{"aws-iso", "us-iso-east-1"}, {"aws-iso-b", "us-isob-east-1"}, {"aws-iso-e", "eu-isoe-west-1"},
	{"aws-iso-f", "us-isof-south-1"}, {"aws-eusc", "eusc-de-east-1"},
}

// namesWith puts c first, in the middle and last of a name.
func namesWith(c byte) []string {
	s := string(c)
	return []string{s + "x", "x" + s + "y", "x" + s}
}

// percentAll percent-encodes every byte.
func percentAll(s string) string {
	return percentEncode(s, func(byte) bool { return false })
}

type nameCase struct {
	in   string
	want Ref
}

// secretNameForms are every form that names a secret, for name n in the
// given partition and region.
func secretNameForms(n, part, region string) []nameCase {
	arn := "arn:" + part + ":secretsmanager:" + region + ":123456789012:secret:" + n
	cur := func(id string) Fetch {
		f := Fetch{Service: SecretsManager, ID: id, Stage: currentStage}
		if strings.HasPrefix(id, "arn:") {
			f.Region = region
		}
		return f
	}
	pinned := func(f Fetch, stage, version string) Fetch { f.Stage, f.VersionID = stage, version; return f }
	bridgeARN := "arn:" + part + ":ssm:" + region + ":123456789012:parameter/aws/reference/secretsmanager/" + n
	return []nameCase{
		{"sm://" + n, Ref{Fetch: cur(n)}},
		{"sm://" + n + "?stage=AWSPREVIOUS#password", Ref{Fetch: pinned(cur(n), "AWSPREVIOUS", ""), Key: "password"}},
		{"sm://" + percentAll(n) + "#/a~1b", Ref{Fetch: cur(n), Pointer: "/a~1b"}},
		{"sm://" + arn + "?version=v-1", Ref{Fetch: pinned(cur(arn), "", "v-1")}},
		{arn, Ref{Fetch: cur(arn)}},
		{arn + ":password:AWSPREVIOUS:", Ref{Fetch: pinned(cur(arn), "AWSPREVIOUS", ""), Key: "password"}},
		{arn + ":::v-2", Ref{Fetch: pinned(cur(arn), "", "v-2")}},
		{"resolve:secretsmanager:" + n, Ref{Fetch: cur(n)}},
		{"resolve:secretsmanager:" + n + ":SecretString:password", Ref{Fetch: cur(n), Key: "password"}},
		{"resolve:secretsmanager:" + arn + ":SecretString:password::v-3", Ref{Fetch: pinned(cur(arn), "", "v-3"), Key: "password"}},
		{"ssm:///aws/reference/secretsmanager/" + n + "?label=AWSPENDING", Ref{Fetch: pinned(cur(n), "AWSPENDING", "")}},
		{bridgeARN, Ref{Fetch: cur("arn:" + part + ":secretsmanager:" + region + ":123456789012:secret:" + n)}},
		{"resolve:ssm:" + bridgeARN, Ref{Fetch: cur("arn:" + part + ":secretsmanager:" + region + ":123456789012:secret:" + n)}},
	}
}

// paramNameForms are every form that names a parameter n.
func paramNameForms(n, part, region string) []nameCase {
	ps := func(id string, version int64, label string) Fetch {
		f := Fetch{Service: ParameterStore, ID: id, Version: version, Label: label}
		if strings.HasPrefix(id, "arn:") {
			f.Region = region
		}
		return f
	}
	cases := []nameCase{
		{"ssm://" + n, Ref{Fetch: ps(n, 0, "")}},
		{"ssm://" + n + "?version=3#k", Ref{Fetch: ps(n, 3, ""), Key: "k"}},
		{"ssm://" + percentAll(n) + "?label=prod", Ref{Fetch: ps(n, 0, "prod")}},
		{"resolve:ssm:" + n, Ref{Fetch: ps(n, 0, "")}},
		{"resolve:ssm:" + n + ":7", Ref{Fetch: ps(n, 7, "")}},
		{"resolve:ssm-secure:" + n + ":1", Ref{Fetch: ps(n, 1, "")}},
	}
	if !strings.HasPrefix(n, "/") {
		// In an ARN, parameter/a/b is /a/b: a name that starts with '/'
		// is written without it.
		arn := "arn:" + part + ":ssm:" + region + ":123456789012:parameter/" + n
		cases = append(cases,
			nameCase{arn, Ref{Fetch: ps(arn, 0, "")}},
			nameCase{"ssm://" + arn + "?version=2", Ref{Fetch: ps(arn, 2, "")}},
			nameCase{"resolve:ssm:" + arn + ":4", Ref{Fetch: ps(arn, 4, "")}},
		)
	}
	return cases
}

func checkNameCase(t *testing.T, tc nameCase) {
	t.Helper()
	got, err := ParseRef(tc.in)
	if err != nil {
		t.Errorf("%q: %v", tc.in, err)
		return
	}
	if got != tc.want {
		t.Errorf("%q:\n got %#v\nwant %#v", tc.in, got, tc.want)
		return
	}
	back, err := ParseRef(got.String())
	if err != nil || !equivalentRefs(got, back) {
		t.Errorf("%q prints as %q: %v", tc.in, got.String(), err)
	}
	inline, fs, err := parseInline(" " + tc.in + " | trim ")
	if err != nil || len(fs) != 1 || inline != got {
		t.Errorf("{{ %s | trim }}: %v", tc.in, err)
	}
}

// TestParseRefNameCharacters: every character AWS allows in a secret's or
// a parameter's name, first, inside and last, in every form of the
// grammar and every partition, parses to the name itself.
func TestParseRefNameCharacters(t *testing.T) {
	for _, p := range partitions {
		for _, c := range []byte(secretChars) {
			for _, n := range namesWith(c) {
				for _, tc := range secretNameForms(n, p[0], p[1]) {
					checkNameCase(t, tc)
				}
			}
		}
		for _, c := range []byte(paramChars) {
			for _, n := range namesWith(c) {
				for _, tc := range paramNameForms(n, p[0], p[1]) {
					checkNameCase(t, tc)
				}
			}
		}
	}
}

// TestParseRefAWSCreatedNames: the names AWS services give the secrets
// they create and manage.
func TestParseRefAWSCreatedNames(t *testing.T) {
	for _, n := range []string{
		"rds!db-1a96bebc-86c1-4982-9f9f-7d6a651d2464",
		"rds!cluster-1a96bebc-86c1-4982-9f9f-7d6a651d2464",
		"events!connection/orders-api/0f4b5a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
		"redshift!prod-cluster-admin",
		"appflow!123456789012-salesforce-1700000000000",
		"ecs!service-connect-tls",
	} {
		for _, tc := range secretNameForms(n, "aws", "eu-west-1") {
			checkNameCase(t, tc)
		}
		// With the random suffix AWS adds to the ARN.
		for _, tc := range secretNameForms(n+"-AbC123", "aws-us-gov", "us-gov-east-1") {
			checkNameCase(t, tc)
		}
	}
	// A '+' in a URL form is a '+', encoded or not; never a space.
	for in, want := range map[string]string{
		"sm://a+b": "a+b", "sm://a%2Bb": "a+b", "sm://rds%21db-x": "rds!db-x", "sm://a%3Db%40c": "a=b@c",
		"ssm:///aws/reference/secretsmanager/a+b=c@d!e": "a+b=c@d!e",
	} {
		r, err := ParseRef(in)
		if err != nil || r.ID != want {
			t.Errorf("%q: ID %q, %v; want %q", in, r.ID, err, want)
		}
	}
}

// TestParseRefNameRefused: characters AWS never allows in a name are
// refused in every form, as are the grammar's own separators where they
// would cut the name.
func TestParseRefNameRefused(t *testing.T) {
	for _, c := range []string{" ", "*", ",", ";", "~", "$", "^", "&", "(", ")", "[", "]", "<", ">", "'", `"`, `\`, "`", "{", "}", "|", "é", "\x00", "\n", "\x7f", "%25", "%20", "%23", "%3F"} {
		n := "x" + c + "y"
		for _, in := range []string{
			"sm://" + n, "ssm://" + n, "ssm:///aws/reference/secretsmanager/" + n,
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:" + n,
			"arn:aws:ssm:us-east-1:123456789012:parameter/" + n,
			"resolve:secretsmanager:" + n + ":SecretString:k", "resolve:ssm:" + n,
		} {
			if strings.HasPrefix(c, "%") && !strings.HasPrefix(in, "sm://") && !strings.HasPrefix(in, "ssm://") {
				continue
			}
			if r, err := ParseRef(in); err == nil {
				t.Errorf("%q accepted: %#v", in, r)
			}
		}
	}
	for in, want := range map[string]string{
		"sm://rds!db-x%zz": "invalid percent-encoding in the secret id",
		"ssm://a%2":        "invalid percent-encoding in the parameter name",
		"ssm://a!b":        "invalid character in the parameter name (allowed: letters, digits and _.-/)",
		"ssm:///aws/reference/secretsmanager/a b":                        "invalid character in the secret name (allowed: letters, digits and /_+=.@!-)",
		"ssm:///aws/reference/secretsmanager/":                           "empty secret id",
		"sm://" + strings.Repeat("a", 2049):                              "secret id is too long",
		"arn:aws:ssm:us-east-1:1:parameter/" + strings.Repeat("a", 2048): "parameter name is too long",
	} {
		if _, err := ParseRef(in); err == nil || err.Error() != want {
			t.Errorf("%.60q: %v, want %s", in, err, want)
		}
	}
}

// TestTemplateAWSCreatedNames: an RDS-managed secret in every place an env
// file can hold a reference.
func TestTemplateAWSCreatedNames(t *testing.T) {
	const n = "rds!db-1a96bebc-86c1-4982-9f9f-7d6a651d2464"
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + n + "-AbCdEf"
	tm := parseEnv(t, Options{}, strings.Join([]string{
		"A=sm://" + n + "#password",
		`B="sm://` + n + `#password"`,
		"C=" + arn + ":password::",
		"D=postgres://u:{{resolve:secretsmanager:" + n + ":SecretString:password}}@h/db",
		"E={{ " + arn + ":password:: | urlquery }}",
		"F={{ sm://a+b=c@d!e#k|trim }}",
	}, "\n")+"\n")
	want := []string{n, n, arn, n, arn, "a+b=c@d!e"}
	uses := tm.Uses()
	if len(uses) != len(want) {
		t.Fatalf("%d uses, want %d: %+v", len(uses), len(want), uses)
	}
	for i, u := range uses {
		if u.Ref.ID != want[i] || (u.Ref.Key != "password" && u.Ref.Key != "k") {
			t.Errorf("%s: %#v", u.Var, u.Ref)
		}
	}
}
