package awsdev

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/rolesenv/rolesenv/internal/testenv"
)

// TestScenarioMatchesMoto runs one script of Secrets Manager and SSM calls
// against the emulator and against moto_server, an independent emulator,
// and compares what a client can observe: values, stages, versions and
// error codes. Random ids are replaced by the order they first appear in.
func TestScenarioMatchesMoto(t *testing.T) {
	s := start(t, Options{HTTP: true})
	id, secret := s.CreateUser("admin", AllowAll)
	emulator := runScenario(t, newClients(sdkConfig(t, s, id, secret, "")), false)

	moto := testenv.StartMoto(t)
	motoLog := runScenario(t, newClients(endpointConfig(t, moto.URL, nil, "testing", "testing", "")), true)

	t.Logf("scenario on the emulator:\n%s", strings.Join(emulator, "\n"))
	if len(emulator) != len(motoLog) {
		t.Fatalf("the scenario has %d steps on the emulator and %d on moto", len(emulator), len(motoLog))
	}
	for i := range emulator {
		if emulator[i] != motoLog[i] {
			t.Errorf("step %d differs:\n  awsdev: %s\n  moto:   %s", i, emulator[i], motoLog[i])
		}
	}
}

// scenario records normalised outcomes.
type scenario struct {
	t    *testing.T
	c    clients
	moto bool
	ids  map[string]string
	log  []string
}

// id names a random id by the order it first appeared in: v1, v2, ...
func (sc *scenario) id(raw *string) string {
	if raw == nil {
		return "<none>"
	}
	if n, ok := sc.ids[*raw]; ok {
		return n
	}
	n := fmt.Sprintf("v%d", len(sc.ids)+1)
	sc.ids[*raw] = n
	return n
}

func (sc *scenario) record(step string, err error, format string, args ...any) {
	if err != nil {
		code := errorCode(err)
		if code == "" {
			sc.t.Fatalf("%s: not an AWS error: %v", step, err)
		}
		sc.log = append(sc.log, step+": error "+code)
		return
	}
	sc.log = append(sc.log, step+": "+fmt.Sprintf(format, args...))
}

func (sc *scenario) stages(m map[string][]string) string {
	var parts []string
	for id, st := range m {
		if len(st) == 0 {
			// moto lists versions without staging labels; AWS leaves
			// these deprecated versions out of VersionIdsToStages.
			continue
		}
		st = slices.Clone(st)
		sort.Strings(st)
		parts = append(parts, sc.id(&id)+"="+strings.Join(st, "+"))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func runScenario(t *testing.T, c clients, moto bool) []string {
	sc := &scenario{t: t, c: c, moto: moto, ids: map[string]string{}}
	sc.rotation()
	sc.puts()
	sc.errorsAndBatch()
	sc.parameters()
	return sc.log
}

func (sc *scenario) get(step, secretID, stage string) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := sc.c.sm.GetSecretValue(ctx(sc.t), in)
	if err != nil {
		sc.record(step, err, "")
		return
	}
	st := slices.Clone(out.VersionStages)
	sort.Strings(st)
	sc.record(step, nil, "%s %s %v", aws.ToString(out.SecretString), sc.id(out.VersionId), st)
}

func (sc *scenario) describe(step, secretID string) {
	out, err := sc.c.sm.DescribeSecret(ctx(sc.t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		sc.record(step, err, "")
		return
	}
	sc.record(step, nil, "%s deleted=%v", sc.stages(out.VersionIdsToStages), out.DeletedDate != nil)
}

// rotation is a full rotation by hand, as a rotation function does it:
// a pending version, promoted to current, the old one previous.
func (sc *scenario) rotation() {
	c, x := sc.c.sm, ctx(sc.t)
	created, err := c.CreateSecret(x, &secretsmanager.CreateSecretInput{Name: aws.String("scn/db"), SecretString: aws.String("one")})
	sc.record("create", err, "%s", sc.id(created.VersionId))
	_, err = c.CreateSecret(x, &secretsmanager.CreateSecretInput{Name: aws.String("scn/db"), SecretString: aws.String("again")})
	sc.record("create again", err, "")

	token := "11111111-2222-3333-4444-555555555555"
	pending, err := c.PutSecretValue(x, &secretsmanager.PutSecretValueInput{SecretId: aws.String("scn/db"), SecretString: aws.String("two"),
		VersionStages: []string{"AWSPENDING"}, ClientRequestToken: aws.String(token)})
	sc.record("put pending", err, "%s %v", sc.id(pending.VersionId), pending.VersionStages)
	retry, err := c.PutSecretValue(x, &secretsmanager.PutSecretValueInput{SecretId: aws.String("scn/db"), SecretString: aws.String("two"),
		VersionStages: []string{"AWSPENDING"}, ClientRequestToken: aws.String(token)})
	if err == nil {
		sc.record("put pending again (same token, same value)", nil, "%s", sc.id(retry.VersionId))
	} else {
		sc.record("put pending again (same token, same value)", err, "")
	}
	sc.get("get current", "scn/db", "")
	sc.get("get pending", "scn/db", "AWSPENDING")
	sc.describe("describe with pending", "scn/db")

	_, err = c.UpdateSecretVersionStage(x, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("scn/db"),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: pending.VersionId})
	sc.record("move current without naming its version", err, "")
	_, err = c.UpdateSecretVersionStage(x, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("scn/db"),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: pending.VersionId, RemoveFromVersionId: created.VersionId})
	sc.record("promote pending", err, "ok")
	_, err = c.UpdateSecretVersionStage(x, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("scn/db"),
		VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: pending.VersionId})
	sc.record("drop pending", err, "ok")
	sc.describe("describe after rotation", "scn/db")
	// moto's GetSecretValue without a VersionStage still answers the
	// version that was current before UpdateSecretVersionStage moved the
	// label (moto keeps a separate default version); AWS answers
	// AWSCURRENT. Against moto the stage is named explicitly.
	stage := ""
	if sc.moto {
		stage = "AWSCURRENT"
	}
	sc.get("get current after rotation", "scn/db", stage)
	sc.get("get previous after rotation", "scn/db", "AWSPREVIOUS")
}

// puts checks PutSecretValue without stages: AWSCURRENT moves to the new
// version and AWSPREVIOUS follows it. It uses its own secret, since moto
// demotes the wrong version after an UpdateSecretVersionStage (above).
func (sc *scenario) puts() {
	c, x := sc.c.sm, ctx(sc.t)
	created, err := c.CreateSecret(x, &secretsmanager.CreateSecretInput{Name: aws.String("scn/put"), SecretString: aws.String("p1")})
	sc.record("create put", err, "%s", sc.id(created.VersionId))
	for _, v := range []string{"p2", "p3"} {
		put, err := c.PutSecretValue(x, &secretsmanager.PutSecretValueInput{SecretId: aws.String("scn/put"), SecretString: aws.String(v)})
		sc.record("put "+v, err, "%s %v", sc.id(put.VersionId), put.VersionStages)
		sc.describe("describe after put "+v, "scn/put")
	}
	sc.get("get current after puts", "scn/put", "")
	sc.get("get previous after puts", "scn/put", "AWSPREVIOUS")

	list, err := c.ListSecretVersionIds(x, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("scn/put")})
	var listed []string
	if err == nil {
		for _, v := range list.Versions {
			// moto lists deprecated versions (no staging label) even
			// without IncludeDeprecated; AWS does not.
			if len(v.VersionStages) > 0 {
				listed = append(listed, sc.id(v.VersionId))
			}
		}
		sort.Strings(listed)
	}
	sc.record("list versions", err, "%v", listed)
}

func (sc *scenario) errorsAndBatch() {
	c, x := sc.c.sm, ctx(sc.t)
	// A new value under an existing version id is refused. moto instead
	// overwrites the version (and moves AWSCURRENT to it); the AWS API
	// reference says the call fails, so the step runs on its own secret
	// and moto's answer is normalised to AWS's.
	token := "66666666-7777-8888-9999-000000000000"
	_, err := c.CreateSecret(x, &secretsmanager.CreateSecretInput{Name: aws.String("scn/token"), SecretString: aws.String("first"), ClientRequestToken: aws.String(token)})
	sc.record("create with a token", err, "ok")
	_, err = c.PutSecretValue(x, &secretsmanager.PutSecretValueInput{SecretId: aws.String("scn/token"), SecretString: aws.String("other"), ClientRequestToken: aws.String(token)})
	if sc.moto && err == nil {
		err = &smithy.GenericAPIError{Code: "ResourceExistsException"}
	}
	sc.record("put with the same token, another value", err, "")

	sc.get("get missing secret", "scn/missing", "")
	sc.get("get missing stage", "scn/db", "NOPE")
	_, err = c.CreateSecret(x, &secretsmanager.CreateSecretInput{Name: aws.String("scn/api"), SecretString: aws.String("key")})
	sc.record("create api", err, "ok")

	out, err := c.BatchGetSecretValue(x, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"scn/put", "scn/missing", "scn/api"}})
	if err == nil {
		var got []string
		for _, v := range out.SecretValues {
			got = append(got, aws.ToString(v.Name)+"="+aws.ToString(v.SecretString))
		}
		for _, e := range out.Errors {
			got = append(got, aws.ToString(e.SecretId)+"!"+aws.ToString(e.ErrorCode))
		}
		sort.Strings(got)
		sc.record("batch", nil, "%v", got)
	} else {
		sc.record("batch", err, "")
	}
	_, err = c.BatchGetSecretValue(x, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a"},
		Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"scn"}}}})
	sc.record("batch with ids and filters", err, "ok")

	_, err = c.DeleteSecret(x, &secretsmanager.DeleteSecretInput{SecretId: aws.String("scn/api"), RecoveryWindowInDays: aws.Int64(7)})
	sc.record("schedule deletion", err, "ok")
	sc.get("get a secret scheduled for deletion", "scn/api", "")
	sc.describe("describe a secret scheduled for deletion", "scn/api")
	_, err = c.DeleteSecret(x, &secretsmanager.DeleteSecretInput{SecretId: aws.String("scn/api"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	sc.record("force delete", err, "ok")
	sc.get("get a deleted secret", "scn/api", "")
}

func (sc *scenario) parameters() {
	c, x := sc.c.ssm, ctx(sc.t)
	put := func(step, name, typ, value string, overwrite bool) {
		out, err := c.PutParameter(x, &ssm.PutParameterInput{Name: aws.String(name), Type: ssmtypes.ParameterType(typ), Value: aws.String(value), Overwrite: aws.Bool(overwrite)})
		if err != nil {
			sc.record(step, err, "")
			return
		}
		sc.record(step, nil, "version %d", out.Version)
	}
	put("put p", "/scn/p", "String", "p1", false)
	put("put p again without overwrite", "/scn/p", "String", "p2", false)
	put("overwrite p", "/scn/p", "String", "p2", true)
	put("put list", "/scn/list", "StringList", "a,b,c", false)
	put("put secure", "/scn/secure", "SecureString", "hidden", false)

	label, err := c.LabelParameterVersion(x, &ssm.LabelParameterVersionInput{Name: aws.String("/scn/p"), ParameterVersion: aws.Int64(1), Labels: []string{"stable", "1bad/label"}})
	if err == nil {
		sc.record("label", nil, "version %d invalid %v", label.ParameterVersion, label.InvalidLabels)
	} else {
		sc.record("label", err, "")
	}

	gets, err := c.GetParameters(x, &ssm.GetParametersInput{WithDecryption: aws.Bool(true), Names: []string{
		"/scn/p", "/scn/p:1", "/scn/p:stable", "/scn/p:7", "/scn/p:nolabel", "/scn/missing", "/scn/list", "/scn/secure",
	}})
	if err == nil {
		var got []string
		for _, p := range gets.Parameters {
			// Selectors are left out: moto does not return
			// Parameter.Selector, which AWS sets (":1", ":stable");
			// TestAWSCLI checks the emulator's.
			got = append(got, fmt.Sprintf("%s=%s(v%d,%s)", aws.ToString(p.Name), aws.ToString(p.Value), p.Version, p.Type))
		}
		sort.Strings(got)
		invalid := slices.Clone(gets.InvalidParameters)
		sort.Strings(invalid)
		sc.record("get parameters", nil, "%v invalid %v", got, invalid)
	} else {
		sc.record("get parameters", err, "")
	}
	getOne := func(step, name string, decrypt bool) {
		out, err := c.GetParameter(x, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(decrypt)})
		if err != nil {
			sc.record(step, err, "")
			return
		}
		value := aws.ToString(out.Parameter.Value)
		if out.Parameter.Type == "SecureString" && !decrypt {
			value = "<ciphertext>" // AWS answers a KMS ciphertext; moto "kms:alias/aws/ssm:<value>"
		}
		sc.record(step, nil, "%s v%d %s", value, out.Parameter.Version, out.Parameter.Type)
	}
	getOne("get missing version", "/scn/p:7", false)
	getOne("get missing parameter", "/scn/missing", false)
	getOne("get secure without decryption", "/scn/secure", false)
	getOne("get a secret through Parameter Store", "/aws/reference/secretsmanager/scn/put", true)

	var eleven []string
	for i := range 11 {
		eleven = append(eleven, fmt.Sprintf("/scn/n%d", i))
	}
	_, err = c.GetParameters(x, &ssm.GetParametersInput{Names: eleven})
	sc.record("get eleven parameters", err, "ok")
}
