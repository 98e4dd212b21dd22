package inject

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
	sm := func(id, stage, version string) Fetch {
		f := Fetch{Service: SecretsManager, ID: id, Stage: stage, VersionID: version}
		if strings.HasPrefix(id, "arn:") {
			f.Region = strings.Split(id, ":")[3]
		}
		return f
	}
	ps := func(id string, version int64, label string) Fetch {
		f := Fetch{Service: ParameterStore, ID: id, Version: version, Label: label}
		if strings.HasPrefix(id, "arn:") {
			f.Region = strings.Split(id, ":")[3]
		}
		return f
	}
	tests := []struct {
		in   string
		want Ref
	}{
		{"sm://prod/db", Ref{Fetch: sm("prod/db", "AWSCURRENT", "")}},
		{"sm://prod/db#password", Ref{Fetch: sm("prod/db", "AWSCURRENT", ""), Key: "password"}},
		{"sm://prod/db#key%20with%23hash", Ref{Fetch: sm("prod/db", "AWSCURRENT", ""), Key: "key with#hash"}},
		{"sm://prod/db#/a/b~1c~0d", Ref{Fetch: sm("prod/db", "AWSCURRENT", ""), Pointer: "/a/b~1c~0d"}},
		{"sm://prod/db?stage=AWSPREVIOUS#password", Ref{Fetch: sm("prod/db", "AWSPREVIOUS", ""), Key: "password"}},
		{"sm://prod/db?version=v-1", Ref{Fetch: sm("prod/db", "", "v-1")}},
		{"sm://" + arn + "#k", Ref{Fetch: sm(arn, "AWSCURRENT", ""), Key: "k"}},
		{"ssm://a/b", Ref{Fetch: ps("a/b", 0, "")}},
		{"ssm:///a/b?version=3#k", Ref{Fetch: ps("/a/b", 3, ""), Key: "k"}},
		{"ssm:///a/b?label=prod", Ref{Fetch: ps("/a/b", 0, "prod")}},
		{"ssm:///aws/reference/secretsmanager/prod/db#k", Ref{Fetch: sm("prod/db", "AWSCURRENT", ""), Key: "k"}},
		{"ssm:///aws/reference/secretsmanager/prod/db?label=AWSPREVIOUS", Ref{Fetch: sm("prod/db", "AWSPREVIOUS", "")}},
		{"ssm:///aws/reference/secretsmanager/prod/db?version=abc-1", Ref{Fetch: sm("prod/db", "", "abc-1")}},
		{arn, Ref{Fetch: sm(arn, "AWSCURRENT", "")}},
		{arn + ":password::", Ref{Fetch: sm(arn, "AWSCURRENT", ""), Key: "password"}},
		{arn + ":/x:AWSPENDING:", Ref{Fetch: sm(arn, "AWSPENDING", ""), Key: "/x"}},
		{arn + ":::v1", Ref{Fetch: sm(arn, "", "v1")}},
		{"arn:aws:ssm:us-west-2:123456789012:parameter/app/port", Ref{Fetch: ps("arn:aws:ssm:us-west-2:123456789012:parameter/app/port", 0, "")}},
		{"arn:aws:ssm:us-west-2:123456789012:parameter/aws/reference/secretsmanager/x", Ref{Fetch: sm("arn:aws:secretsmanager:us-west-2:123456789012:secret:x", "AWSCURRENT", "")}},
		{"resolve:secretsmanager:prod/db", Ref{Fetch: sm("prod/db", "AWSCURRENT", "")}},
		{"resolve:secretsmanager:prod/db:SecretString:password", Ref{Fetch: sm("prod/db", "AWSCURRENT", ""), Key: "password"}},
		{"resolve:secretsmanager:prod/db:SecretString:password:AWSPREVIOUS", Ref{Fetch: sm("prod/db", "AWSPREVIOUS", ""), Key: "password"}},
		{"resolve:secretsmanager:prod/db::::v2", Ref{Fetch: sm("prod/db", "", "v2")}},
		{"resolve:secretsmanager:" + arn + ":SecretString:k", Ref{Fetch: sm(arn, "AWSCURRENT", ""), Key: "k"}},
		{"resolve:ssm:/a/b", Ref{Fetch: ps("/a/b", 0, "")}},
		{"resolve:ssm:/a/b:12", Ref{Fetch: ps("/a/b", 12, "")}},
		{"resolve:ssm-secure:/a/b:1", Ref{Fetch: ps("/a/b", 1, "")}},
		{"resolve:ssm:arn:aws:ssm:us-east-1:123456789012:parameter/a:4", Ref{Fetch: ps("arn:aws:ssm:us-east-1:123456789012:parameter/a", 4, "")}},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%q:\n got %#v\nwant %#v", tt.in, got, tt.want)
		}
		back, err := ParseRef(got.String())
		if err != nil || !equivalentRefs(got, back) {
			t.Errorf("%q prints as %q: %v", tt.in, got.String(), err)
		}
	}
}

func TestParseRefErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"vault://x", "unknown reference scheme (want sm://, ssm://, an ARN or resolve:)"},
		{"resolve:s3:x", "unknown dynamic reference service (want secretsmanager, ssm or ssm-secure)"},
		{"sm://", "empty secret id"},
		{"sm://a b", "invalid character in the secret name (allowed: letters, digits and /_+=.@!-)"},
		{"sm://x#", "empty JSON key"},
		{"sm://x#%zz", "invalid percent-encoding in the JSON key"},
		{"sm://x#/a~2", "invalid JSON Pointer: '~' must be followed by 0 or 1"},
		{"sm://x?stage=A&version=B", "both a stage and a version id are pinned; give one"},
		{"sm://x?stage=A&stage=B", `query parameter "stage" given twice`},
		{"sm://x?label=A", `unknown query parameter "label" (want stage or version)`},
		{"sm://x?stage=", "empty or malformed query parameter (want ?stage=, ?version= or ?label=)"},
		{"sm://x?version=not_a_uuid", "invalid version id"},
		{"ssm://x?version=0", "a parameter version is a positive number"},
		{"ssm://x?version=01", "a parameter version is a positive number"},
		{"ssm://x?version=a", "a parameter version is a positive number"},
		{"ssm://x?version=1&label=l", "both a version and a label are pinned; give one"},
		{"ssm://x?label=1abc", "invalid parameter label (letters, digits, . - _; not starting with a digit)"},
		{"ssm://x?stage=A", `unknown query parameter "stage" (want version or label)`},
		{"ssm://a b", "invalid character in the parameter name (allowed: letters, digits and _.-/)"},
		{"arn:aws:secretsmanager:r:1:secret:x:k", "malformed secret ARN (want arn:aws:secretsmanager:<region>:<account>:secret:<name>, optionally followed by :<json-key>:<stage>:<version-id>)"},
		{"arn:aws:secretsmanager:r:1:secret:x:k:S:V", "both a stage and a version id are pinned; give one"},
		{"arn:aws:secretsmanager::1:secret:x", "malformed secret ARN (want arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)"},
		{"arn:aws:ssm:r:1:parameter/x:3", "malformed parameter ARN (want arn:aws:ssm:<region>:<account>:parameter/<name>)"},
		{"arn:aws:ssm:r:1:document/x", "malformed parameter ARN (want arn:<partition>:ssm:<region>:<account>:parameter/<name>)"},
		{"arn:aws:s3:::bucket", "unsupported ARN service (want secretsmanager or ssm)"},
		{"arn:aws:s3", "malformed ARN"},
		{"arn:aws:iam::1:role/x", "unsupported ARN service (want secretsmanager or ssm)"},
		{"resolve:secretsmanager:x:SecretBinary", "the field after the secret id must be SecretString"},
		{"resolve:secretsmanager:x:SecretString:k:S:V", "both a stage and a version id are pinned; give one"},
		{"resolve:secretsmanager:x:a:b:c:d:e", "too many fields (want <id>:SecretString:<json-key>:<stage>:<version-id>)"},
		{"resolve:ssm:/a:1:2", "too many fields (want <name>:<version>)"},
		{"resolve:ssm:/a:", "empty parameter version"},
		{"resolve:ssm:/a:latest", "a parameter version is a positive number"},
		{"sm://" + strings.Repeat("a", 9000), "reference is too long"},
		{"sm://a#" + strings.Repeat("%12", 1025), "JSON key is too long"},
		{"resolve:secretsmanager:a:SecretString:" + strings.Repeat("k", 1025), "JSON key is too long"},
	}
	for _, tt := range tests {
		_, err := ParseRef(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n got %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

func TestIsWholeRef(t *testing.T) {
	for v, want := range map[string]bool{
		"sm://x": true, "ssm://x": true, "sm:/x": false, " sm://x": false,
		"arn:aws:secretsmanager:us-east-1:1:secret:x":           true,
		"arn:aws:secretsmanager:us-east-1:1:secret:x:k::":       true,
		"arn:aws:ssm:us-east-1:1:parameter/x":                   true,
		"arn:aws:ssm:us-east-1:1:document/x":                    false,
		"arn:aws:iam::1:role/app":                               false,
		"arn:aws:secretsmanager:us-east-1:1:something-else:abc": false,
	} {
		if got := isWholeRef(v); got != want {
			t.Errorf("isWholeRef(%q) = %v", v, got)
		}
	}
}

func TestExtractAndFilters(t *testing.T) {
	const doc = `{"s":"str","n":1.50,"b":false,"z":null,"o":{"x":[1, 2 ,{"y":"deep"}]},"/k":"slash","~":"tilde","":"empty"}`
	tests := []struct {
		key, pointer, want, err string
	}{
		{key: "s", want: "str"},
		{key: "n", want: "1.50"},
		{key: "b", want: "false"},
		{key: "z", want: "null"},
		{key: "o", want: `{"x":[1,2,{"y":"deep"}]}`},
		{key: "/k", want: "slash"},
		{pointer: "/o/x/2/y", want: "deep"},
		{pointer: "/~1k", want: "slash"},
		{pointer: "/~0", want: "tilde"},
		{pointer: "/", want: "empty"},
		{pointer: "/o/x/1", want: "2"},
		{key: "missing", err: `JSON key "missing" not found`},
		{pointer: "/o/x/3", err: `JSON Pointer "/o/x/3": token 3 is past the end of the array`},
		{pointer: "/o/x/01", err: `JSON Pointer "/o/x/01": token 3 is not an array index`},
		{pointer: "/o/x/-", err: `JSON Pointer "/o/x/-": token 3 is not an array index`},
		{pointer: "/s/x", err: `JSON Pointer "/s/x": token 2 goes into a value that is neither an object nor an array`},
		{pointer: "/nope", err: `JSON Pointer "/nope": token 1 not found`},
	}
	for _, tt := range tests {
		got, err := extract(doc, tt.key, tt.pointer)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q%q: %v, want %s", tt.key, tt.pointer, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q%q = %q, %v; want %q", tt.key, tt.pointer, got, err, tt.want)
		}
	}
	for _, v := range []string{"SNTL not json", `["SNTL"]`, `"SNTL"`} {
		_, err := extract(v, "k", "")
		if err == nil || strings.Contains(err.Error(), "SNTL") {
			t.Errorf("key on %q: %v", v, err)
		}
		_, err = extract(v, "", "/k")
		if err == nil || strings.Contains(err.Error(), "SNTL") {
			t.Errorf("pointer on %q: %v", v, err)
		}
	}
	filterTests := []struct{ f, in, want string }{
		{"urlquery", "a b/c?d=e&f+g@h:i~j-k_l.m%", "a%20b%2Fc%3Fd%3De%26f%2Bg%40h%3Ai~j-k_l.m%25"},
		{"urlquery", "é", "%C3%A9"},
		{"base64", "hi\x00", "aGkA"},
		{"base64decode", "aGkh", "hi!"},
		{"base64decode", "aGk", "hi"},
		{"base64decode", "aG\nk=\r\n", "hi"},
		{"json", "a\"b\\c\n<&>é\x01", `a\"b\\c\n<&>é\u0001`},
		{"trim", " \t x y \n", "x y"},
	}
	for _, tt := range filterTests {
		got, err := filters[tt.f](tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%s(%q) = %q, %v; want %q", tt.f, tt.in, got, err, tt.want)
		}
	}
	if _, err := filters["base64decode"]("SNTL!"); err == nil || strings.Contains(err.Error(), "SNTL") {
		t.Errorf("base64decode of garbage: %v", err)
	}
}

// TestExtractDuplicateKeys: a member name given twice in an object that a
// key or pointer reads from is refused, by its path (only when it is the
// member asked for) and never its value,
// however the names are spelled; what is selected, or a whole value, is
// passed on as written.
func TestExtractDuplicateKeys(t *testing.T) {
	const twice = " twice (JSON leaves which one counts undefined, and readers differ); neither is used"
	tests := []struct {
		doc, key, pointer, want, err string
	}{
		{doc: `{"a":"SNTL1","a":"SNTL2"}`, key: "a", err: `the JSON names the key "/a"` + twice},
		{doc: `{"a":"SNTL1","\u0061":"SNTL2"}`, key: "a", err: `the JSON names the key "/a"` + twice},
		{doc: `{"\u0061":"SNTL1","a":"SNTL2"}`, pointer: "/a", err: `the JSON names the key "/a"` + twice},
		// Another member given twice is not named: in a lookup table the
		// names are secret data too.
		{doc: `{"SNTL-b":"SNTL1","SNTL-b":"SNTL2","a":"x"}`, key: "a",
			err: "the top-level JSON object names a member twice (JSON leaves which one counts undefined, and readers differ); no key is read from it"},
		{doc: `{"o":{"SNTL-y":1,"SNTL-y":2,"x":3}}`, pointer: "/o/x",
			err: `the JSON object at "/o" names a member twice (JSON leaves which one counts undefined, and readers differ); no key is read from it`},
		{doc: ` {"o":{"x":"SNTL1","x":"SNTL2"}}`, pointer: "/o/x", err: `the JSON names the key "/o/x"` + twice},
		{doc: `{"o":{"x":"SNTL1"},"o":{"x":"SNTL2"}}`, pointer: "/o/x", err: `the JSON names the key "/o"` + twice},
		{doc: `{"a/b":{"~":"SNTL1","\u007e":"SNTL2"}}`, pointer: "/a~1b/~0", err: `the JSON names the key "/a~1b/~0"` + twice},
		{doc: `{"l":[{"k":"SNTL1"},{"k":"SNTL1","k":"SNTL2"}]}`, pointer: "/l/1/k", err: `the JSON names the key "/l/1/k"` + twice},
		{doc: `{"\n":"SNTL1","\n":"SNTL2"}`, key: "\n", err: `the JSON names the key "/\n"` + twice},
		// Only the objects read from are checked.
		{doc: `{"l":[{"k":1,"k":2},{"k":3}]}`, pointer: "/l/1/k", want: "3"},
		{doc: `{"a":1,"s":{"x":1,"x":2}}`, pointer: "/a", want: "1"},
		// What is selected is passed on as written.
		{doc: `{"o":{"x":1,"x":2}}`, key: "o", want: `{"x":1,"x":2}`},
		{doc: `{"o":{"x":1,"x":2}}`, pointer: "/o", want: `{"x":1,"x":2}`},
		{doc: `{"a":1,"a":2}`, want: `{"a":1,"a":2}`},
		// Not duplicates: names that differ after decoding.
		{doc: `{"a":1,"A":2,"a ":3,"\u00e9":4,"e\u0301":5}`, key: "a", want: "1"},
	}
	for _, tt := range tests {
		got, err := extract(tt.doc, tt.key, tt.pointer)
		if tt.err != "" {
			if err == nil || strings.Contains(err.Error(), "SNTL") || err.Error() != strings.Replace(tt.err, "\n", `\n`, 1) {
				t.Errorf("%s %q%q: %v, want %s", tt.doc, tt.key, tt.pointer, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s %q%q = %q, %v; want %q", tt.doc, tt.key, tt.pointer, got, err, tt.want)
		}
	}
}
