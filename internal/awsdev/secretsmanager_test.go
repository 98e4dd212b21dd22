package awsdev

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestSecretLookupAndBinary(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	arn, err := s.CreateBinarySecret("bin/key", []byte{0, 1, 2, 255})
	if err != nil {
		t.Fatal(err)
	}
	partial := strings.TrimSuffix(arn, arn[len(arn)-7:])
	for _, id := range []string{"bin/key", arn, partial} {
		got, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !bytes.Equal(got.SecretBinary, []byte{0, 1, 2, 255}) || got.SecretString != nil {
			t.Errorf("%s: binary = %v, string = %v", id, got.SecretBinary, got.SecretString)
		}
	}
	other := arn[:len(arn)-1] + "X"
	if strings.HasSuffix(arn, "X") { // else "other" is the secret's own ARN
		other = arn[:len(arn)-1] + "Y"
	}
	for _, id := range []string{other, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:bin/key", "bin/key-" + arn[len(arn)-6:]} {
		_, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		wantCode(t, err, "ResourceNotFoundException")
	}
}

func TestSecretValueLimits(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	big := strings.Repeat("x", 65536)
	if _, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("big"), SecretString: aws.String(big)}); err != nil {
		t.Fatalf("64 KiB: %v", err)
	}
	_, err := c.sm.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("big"), SecretString: aws.String(big + "x")})
	wantCode(t, err, "ValidationException")
	_, err = c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("a"), SecretBinary: []byte("b")})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("bad name!"), SecretString: aws.String("a")})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.sm.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("big")})
	wantCode(t, err, "InvalidRequestException")

	// A secret without a value has no AWSCURRENT to read.
	if _, err := c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")})
	wantCode(t, err, "ResourceNotFoundException")
	put, err := c.sm.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty"), SecretString: aws.String("v"), VersionStages: []string{"AWSPENDING"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(put.VersionStages, ",") != "AWSPENDING,AWSCURRENT" {
		t.Errorf("the first version's stages = %v, want AWSCURRENT added", put.VersionStages)
	}
}

func TestSecretVersionsAndStages(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("db", "v1"); err != nil {
		t.Fatal(err)
	}
	v2, err := s.PutSecretValue("db", "v2")
	if err != nil {
		t.Fatal(err)
	}
	pending, err := s.PutSecretValue("db", "v3", "AWSPENDING")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.SecretVersions("db")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, *v.String+"="+strings.Join(v.Stages, "+"))
	}
	if strings.Join(got, " ") != "v1=AWSPREVIOUS v2=AWSCURRENT v3=AWSPENDING" {
		t.Errorf("versions = %v", got)
	}
	// By version id, and by id and stage together.
	out, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: aws.String(pending)})
	if err != nil || *out.SecretString != "v3" {
		t.Fatalf("by version id: %v", err)
	}
	_, err = c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: aws.String(pending), VersionStage: aws.String("AWSCURRENT")})
	wantCode(t, err, "InvalidRequestException")
	_, err = c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionId: aws.String("00000000-0000-0000-0000-000000000000")})
	wantCode(t, err, "ResourceNotFoundException")

	// A custom label, removed again; removing AWSCURRENT alone is refused.
	if _, err := c.sm.UpdateSecretVersionStage(ctx(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"), VersionStage: aws.String("blue"), MoveToVersionId: aws.String(v2)}); err != nil {
		t.Fatal(err)
	}
	list, err := c.sm.ListSecretVersionIds(ctx(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("db"), IncludeDeprecated: aws.Bool(true)})
	if err != nil || len(list.Versions) != 3 || strings.Join(list.Versions[1].VersionStages, ",") != "AWSCURRENT,blue" {
		t.Fatalf("ListSecretVersionIds = %+v, %v", list, err)
	}
	_, err = c.sm.UpdateSecretVersionStage(ctx(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"), VersionStage: aws.String("AWSCURRENT"), RemoveFromVersionId: aws.String(v2)})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.sm.UpdateSecretVersionStage(ctx(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"), VersionStage: aws.String("blue"), RemoveFromVersionId: aws.String(pending)})
	wantCode(t, err, "InvalidParameterException")
	if _, err := c.sm.UpdateSecretVersionStage(ctx(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"), VersionStage: aws.String("blue"), RemoveFromVersionId: aws.String(v2)}); err != nil {
		t.Fatal(err)
	}
	// Paging through versions.
	page, err := c.sm.ListSecretVersionIds(ctx(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("db"), MaxResults: aws.Int32(2)})
	if err != nil || len(page.Versions) != 2 || page.NextToken == nil {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	page, err = c.sm.ListSecretVersionIds(ctx(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("db"), MaxResults: aws.Int32(2), NextToken: page.NextToken})
	if err != nil || len(page.Versions) != 1 || page.NextToken != nil {
		t.Fatalf("second page = %+v, %v", page, err)
	}
}

func TestSecretDeletion(t *testing.T) {
	clock := newFakeClock(time.Now())
	s := start(t, Options{Now: clock.Now})
	c := adminClients(t, s)
	if _, err := s.CreateSecret("gone", "v"); err != nil {
		t.Fatal(err)
	}
	_, err := c.sm.DeleteSecret(ctx(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.sm.DeleteSecret(ctx(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(3)})
	wantCode(t, err, "InvalidParameterException")
	del, err := c.sm.DeleteSecret(ctx(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil || !del.DeletionDate.Equal(clock.Now().Add(7*24*time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("DeleteSecret = %v, %v", del.DeletionDate, err)
	}
	_, err = c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")})
	wantCode(t, err, "InvalidRequestException")
	_, err = c.sm.CreateSecret(ctx(t), &secretsmanager.CreateSecretInput{Name: aws.String("gone"), SecretString: aws.String("v")})
	wantCode(t, err, "InvalidRequestException")
	b, err := c.sm.BatchGetSecretValue(ctx(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"gone"}})
	if err != nil || len(b.Errors) != 1 || *b.Errors[0].ErrorCode != "InvalidRequestException" {
		t.Fatalf("batch of a deleted secret = %+v, %v", b, err)
	}
	// Restored, it reads again; deleted again, it is gone after the window.
	if _, err := c.sm.RestoreSecret(ctx(t), &secretsmanager.RestoreSecretInput{SecretId: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.DeleteSecret(ctx(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	// Past the window (through the Go API: the SDK signs with the real
	// clock, which is now 30 days behind the emulator's).
	clock.Add(30*24*time.Hour + time.Second)
	if _, err := s.SecretVersions("gone"); err == nil {
		t.Error("the secret is still there after its recovery window")
	}
	if _, err := s.CreateSecret("gone", "new"); err != nil {
		t.Fatalf("the name is free after the window: %v", err)
	}
}

func TestBatchGetSecretValueAccessAndFilters(t *testing.T) {
	s := start(t, Options{})
	a, _ := s.CreateSecret("team/a", "A")
	if _, err := s.CreateSecret("team/b", "B"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSecret("other/c", "C"); err != nil {
		t.Fatal(err)
	}
	id, secret := s.CreateUser("reader", Policy{Allow: []Rule{
		{Actions: []string{"secretsmanager:BatchGetSecretValue", "secretsmanager:ListSecrets"}, Resources: []string{"*"}},
		{Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{a}},
	}})
	c := newClients(sdkConfig(t, s, id, secret, ""))
	out, err := c.sm.BatchGetSecretValue(ctx(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"team/a", "team/b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecretValues) != 1 || *out.SecretValues[0].SecretString != "A" || len(out.Errors) != 1 ||
		*out.Errors[0].ErrorCode != "AccessDeniedException" || *out.Errors[0].SecretId != "team/b" {
		t.Errorf("batch = %+v", out)
	}
	out, err = c.sm.BatchGetSecretValue(ctx(t), &secretsmanager.BatchGetSecretValueInput{Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"team/"}}}})
	if err != nil || len(out.SecretValues)+len(out.Errors) != 2 {
		t.Fatalf("batch by filter = %+v, %v", out, err)
	}
	var ids []string
	for i := range 21 {
		ids = append(ids, "team/"+string(rune('a'+i)))
	}
	_, err = c.sm.BatchGetSecretValue(ctx(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids})
	wantCode(t, err, "ValidationException")

	// Without BatchGetSecretValue the whole call is denied.
	nid, nsecret := s.CreateUser("single", Policy{Allow: []Rule{{Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{"*"}}}})
	_, err = newClients(sdkConfig(t, s, nid, nsecret, "")).sm.BatchGetSecretValue(ctx(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"team/a"}})
	wantCode(t, err, "AccessDeniedException")
}

func TestListSecrets(t *testing.T) {
	s := start(t, Options{})
	c := adminClients(t, s)
	for _, n := range []string{"prod/a", "prod/b", "dev/a"} {
		if _, err := s.CreateSecret(n, "v"); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.sm.ListSecrets(ctx(t), &secretsmanager.ListSecretsInput{Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"prod/"}}}})
	if err != nil || len(out.SecretList) != 2 || *out.SecretList[0].Name != "prod/a" {
		t.Fatalf("ListSecrets = %+v, %v", out, err)
	}
	out, err = c.sm.ListSecrets(ctx(t), &secretsmanager.ListSecretsInput{Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"!prod/"}}}})
	if err != nil || len(out.SecretList) != 1 || *out.SecretList[0].Name != "dev/a" {
		t.Fatalf("ListSecrets negated = %+v, %v", out, err)
	}
}
