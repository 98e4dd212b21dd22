package inject

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rolesenv/rolesenv/internal/awsdev"
	"github.com/rolesenv/rolesenv/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The golden secrets and parameters, seeded the same way into the
// emulator (Go API) and moto (aws CLI).
var (
	goldenDB      = `{"username":"app_user","password":"p@ss w/rd&$\"","port":5432,"enabled":true,"none":null,"nested":{"list":["a",{"name":"deep"}]},"/slash":"slashed","key with space":"spaced"}`
	goldenPlain   = "plain-value"
	goldenBinary  = []byte{0x00, 0x01, 0xfe, 0xff, 'b', 'i', 'n'}
	goldenEncoded = base64.StdEncoding.EncodeToString([]byte("decoded text"))
	goldenPadded  = "  padded value \n"
	goldenRotated = []string{`{"v":"one"}`, `{"v":"two"}`}
)

// ecsParamSkip: AWS takes parameter ARNs in GetParameters' Names (the only
// way to read a parameter shared from another account), and rolesenv
// passes them as written; the emulator does too, but moto 5.2.1 takes
// them only in GetParameter, so moto's golden test skips the ECS
// parameter ARN form (TestRegions also checks it with fakes).
var ecsParamSkip = []string{"ECS_PARAM"}

// goldenPlaceholders are the parts of the template that differ between
// emulators.
type goldenPlaceholders struct {
	dbARN, rotatedARN, rotatedV1 string
	skip                         []string // variables an emulator cannot serve yet
}

func goldenTemplate(t *testing.T, p goldenPlaceholders) *Template {
	t.Helper()
	data, err := os.ReadFile("../testdata/inject/golden.env")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer("@DB_ARN@", p.dbARN, "@ROTATED_ARN@", p.rotatedARN, "@ROTATED_V1@", p.rotatedV1).Replace(string(data))
	var lines []string
	for _, line := range strings.Split(src, "\n") {
		if name, _, _ := strings.Cut(line, "="); !slices.Contains(p.skip, name) {
			lines = append(lines, line)
		}
	}
	src = strings.Join(lines, "\n")
	tm, err := Parse([]File{{Name: "golden.env", Data: []byte(src)}}, Options{CleanEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// checkGolden resolves the golden template and compares the environment
// with testdata/inject/golden.json (ARNs put back as placeholders).
func checkGolden(t *testing.T, cfg aws.Config, p goldenPlaceholders) {
	t.Helper()
	tm := goldenTemplate(t, p)
	r := &Resolver{Config: cfg}
	env, _, err := r.Resolve(context.Background(), tm)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = strings.ReplaceAll(v, p.dbARN, "@DB_ARN@")
	}
	path := "../testdata/inject/golden.json"
	if *update {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(got); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if slices.Contains(p.skip, k) {
			continue
		}
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected variable %s", k)
		}
	}
}

// TestGoldenAWSDev resolves a template using every form of the grammar
// against the emulator.
func TestGoldenAWSDev(t *testing.T) {
	s, cfg := startDev(t, awsdev.AllowAll)
	p := goldenPlaceholders{}
	p.dbARN = must[string](t)(s.CreateSecret("golden/db", goldenDB))
	must[string](t)(s.CreateSecret("golden/plain", goldenPlain))
	must[string](t)(s.CreateBinarySecret("golden/binary", goldenBinary))
	must[string](t)(s.CreateSecret("golden/encoded", goldenEncoded))
	must[string](t)(s.CreateSecret("golden/padded", goldenPadded))
	p.rotatedARN = must[string](t)(s.CreateSecret("golden/rotated", goldenRotated[0]))
	must[string](t)(s.PutSecretValue("golden/rotated", goldenRotated[1]))
	versions := must[[]awsdev.SecretVersion](t)(s.SecretVersions("golden/rotated"))
	for _, v := range versions {
		if v.String != nil && *v.String == goldenRotated[0] {
			p.rotatedV1 = v.VersionID
		}
	}
	must[int64](t)(s.PutParameter("golden.plain", "String", "dotted"))
	must[int64](t)(s.PutParameter("/golden/port", "String", "5432"))
	must[int64](t)(s.PutParameter("/golden/port", "String", "6543"))
	if err := s.LabelParameterVersion("/golden/port", 1, "stable"); err != nil {
		t.Fatal(err)
	}
	must[int64](t)(s.PutParameter("/golden/secure", "SecureString", "secure-value"))
	must[int64](t)(s.PutParameter("/golden/json", "String", `{"k":"from-json"}`))
	checkGolden(t, cfg, p)
}

// TestGoldenMoto resolves the same template against moto_server, seeded
// by the aws CLI: an independent emulator and an independent client.
func TestGoldenMoto(t *testing.T) {
	testenv.RequireTool(t, "aws")
	testenv.IsolateAWS(t)
	m := testenv.StartMoto(t)
	cli := awsCLI(t, m.URL, "testing", "testing")
	dir := t.TempDir()
	bin := filepath.Join(dir, "binary")
	if err := os.WriteFile(bin, goldenBinary, 0o600); err != nil {
		t.Fatal(err)
	}
	p := goldenPlaceholders{skip: ecsParamSkip}
	p.dbARN = cli("secretsmanager", "create-secret", "--name", "golden/db", "--secret-string", goldenDB, "--query", "ARN", "--output", "text")
	cli("secretsmanager", "create-secret", "--name", "golden/plain", "--secret-string", goldenPlain)
	cli("secretsmanager", "create-secret", "--name", "golden/binary", "--secret-binary", "fileb://"+bin)
	cli("secretsmanager", "create-secret", "--name", "golden/encoded", "--secret-string", goldenEncoded)
	cli("secretsmanager", "create-secret", "--name", "golden/padded", "--secret-string", goldenPadded)
	p.rotatedARN = cli("secretsmanager", "create-secret", "--name", "golden/rotated", "--secret-string", goldenRotated[0], "--query", "ARN", "--output", "text")
	p.rotatedV1 = cli("secretsmanager", "describe-secret", "--secret-id", "golden/rotated", "--query", "keys(VersionIdsToStages)[0]", "--output", "text")
	cli("secretsmanager", "put-secret-value", "--secret-id", "golden/rotated", "--secret-string", goldenRotated[1])
	cli("ssm", "put-parameter", "--name", "golden.plain", "--type", "String", "--value", "dotted")
	cli("ssm", "put-parameter", "--name", "/golden/port", "--type", "String", "--value", "5432")
	cli("ssm", "put-parameter", "--name", "/golden/port", "--type", "String", "--value", "6543", "--overwrite")
	cli("ssm", "label-parameter-version", "--name", "/golden/port", "--parameter-version", "1", "--labels", "stable")
	cli("ssm", "put-parameter", "--name", "/golden/secure", "--type", "SecureString", "--value", "secure-value")
	cli("ssm", "put-parameter", "--name", "/golden/json", "--type", "String", "--value", `{"k":"from-json"}`)
	checkGolden(t, endpointConfig(t, m.URL, nil, "testing", "testing"), p)
}

// awsCLI returns a function that runs the aws CLI against url with the
// given static credentials and returns its trimmed output.
func awsCLI(t *testing.T, url, id, secret string) func(args ...string) string {
	t.Helper()
	aws := testenv.RequireTool(t, "aws")
	// aws CLI v1 reads AWS_DEFAULT_REGION, not AWS_REGION.
	env := testenv.SafeEnv(t, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_DEFAULT_REGION=us-east-1")
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"--endpoint-url", url}, args...)...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("aws %s: %v: %s", strings.Join(args[:2], " "), err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
}
