package awsdev

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// regionClients are clients for region, through the emulator's one URL:
// the region only changes the credential scope the SDK signs with.
func regionClients(t *testing.T, s *Server, region, keyID, secret string) clients {
	t.Helper()
	cfg := sdkConfig(t, s, keyID, secret, "")
	cfg.Region = region
	return newClients(cfg)
}

func TestRegionsKeepTheirOwnData(t *testing.T) {
	s := start(t, Options{Regions: []string{"eu-west-1"}})
	if got := strings.Join(s.Regions(), ","); got != "us-east-1,eu-west-1" {
		t.Errorf("Regions = %s", got)
	}
	eu := s.InRegion("eu-west-1")
	if eu.Name() != "eu-west-1" || s.InRegion("us-east-1").Name() != s.Region() {
		t.Errorf("InRegion names %s and %s", eu.Name(), s.InRegion("us-east-1").Name())
	}
	id, secret := s.CreateUser("admin", AllowAll)
	usc := regionClients(t, s, "us-east-1", id, secret)
	euc := regionClients(t, s, "eu-west-1", id, secret)

	// The same name in two regions: two secrets, two values, two ARNs.
	euARN, err := eu.CreateSecret("app/db", "eu-value")
	if err != nil {
		t.Fatal(err)
	}
	usARN, err := s.CreateSecret("app/db", "us-value")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(euARN, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-") ||
		!strings.HasPrefix(usARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-") {
		t.Errorf("ARNs = %s, %s", euARN, usARN)
	}
	for _, tt := range []struct {
		c         clients
		id        string
		value     string
		arn, code string
	}{
		{c: euc, id: "app/db", value: "eu-value", arn: euARN},
		{c: usc, id: "app/db", value: "us-value", arn: usARN},
		{c: euc, id: euARN, value: "eu-value", arn: euARN},
		// A secret's ARN names its region; another region does not know it.
		{c: usc, id: euARN, code: "ResourceNotFoundException"},
		{c: euc, id: usARN, code: "ResourceNotFoundException"},
	} {
		got, err := tt.c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(tt.id)})
		if tt.code != "" {
			wantCode(t, err, tt.code)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if *got.SecretString != tt.value || *got.ARN != tt.arn {
			t.Errorf("GetSecretValue(%s) = %s, %s; want %s, %s", tt.id, *got.SecretString, *got.ARN, tt.value, tt.arn)
		}
	}
	// A rotation through the API stays in its region.
	if _, err := euc.sm.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), SecretString: aws.String("eu-2")}); err != nil {
		t.Fatal(err)
	}
	if vs, err := s.SecretVersions("app/db"); err != nil || len(vs) != 1 {
		t.Errorf("home region versions = %d, %v; want 1", len(vs), err)
	}
	if vs, err := eu.SecretVersions("app/db"); err != nil || len(vs) != 2 {
		t.Errorf("eu-west-1 versions = %d, %v; want 2", len(vs), err)
	}
	list, err := euc.sm.ListSecrets(ctx(t), &secretsmanager.ListSecretsInput{})
	if err != nil || len(list.SecretList) != 1 || *list.SecretList[0].ARN != euARN {
		t.Errorf("ListSecrets in eu-west-1 = %+v, %v", list, err)
	}

	// SSM: parameters, their ARNs and the bridge are per region too.
	if _, err := eu.PutParameter("/app/p", "String", "eu-p"); err != nil {
		t.Fatal(err)
	}
	p, err := euc.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/app/p")})
	if err != nil || *p.Parameter.Value != "eu-p" || *p.Parameter.ARN != "arn:aws:ssm:eu-west-1:123456789012:parameter/app/p" {
		t.Fatalf("GetParameter in eu-west-1 = %+v, %v", p, err)
	}
	_, err = usc.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/app/p")})
	wantCode(t, err, "ParameterNotFound")
	ps, err := usc.ssm.GetParameters(ctx(t), &ssm.GetParametersInput{Names: []string{*p.Parameter.ARN}})
	if err != nil || len(ps.Parameters) != 0 || len(ps.InvalidParameters) != 1 || ps.InvalidParameters[0] != *p.Parameter.ARN {
		t.Errorf("an eu-west-1 parameter ARN read in us-east-1 = %+v, %v", ps, err)
	}
	ref, err := euc.ssm.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/aws/reference/secretsmanager/app/db"), WithDecryption: aws.Bool(true)})
	if err != nil || *ref.Parameter.Value != "eu-2" || *ref.Parameter.ARN != euARN {
		t.Errorf("the Secrets Manager bridge in eu-west-1 = %+v, %v", ref, err)
	}

	// IAM and STS are global.
	who, err := euc.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	if err != nil || *who.Arn != "arn:aws:iam::123456789012:user/admin" {
		t.Errorf("GetCallerIdentity in eu-west-1 = %+v, %v", who, err)
	}
	// A region the emulator does not serve fails as before.
	_, err = regionClients(t, s, "ap-south-1", id, secret).sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	wantCode(t, err, "InvalidSignatureException")

	// Calls are counted by operation, and by the region they were scoped to.
	if n := s.Calls(opGet); n != 6 {
		t.Errorf("Calls(GetSecretValue) = %d, want 6", n)
	}
	if us, euN := s.InRegion("us-east-1").Calls(opGet), eu.Calls(opGet); us != 2 || euN != 3 {
		t.Errorf("GetSecretValue calls: us-east-1 %d, eu-west-1 %d; want 2 and 3", us, euN)
	}
	st, out := control(t, s, http.MethodGet, "/_awsdev/calls", "")
	regions, _ := out["regions"].(map[string]any)
	euCalls, _ := regions["eu-west-1"].(map[string]any)
	if st != 200 || euCalls[opGet] != float64(3) {
		t.Errorf("GET /_awsdev/calls = %d %v", st, out)
	}
	s.ResetCalls()
	if n := eu.Calls(opGet); n != 0 {
		t.Errorf("after ResetCalls, eu-west-1 counts %d", n)
	}
}

// A policy can grant one region and not another, since the ARNs name it.
func TestRegionInPolicies(t *testing.T) {
	s := start(t, Options{Regions: []string{"eu-west-1"}})
	if _, err := s.InRegion("eu-west-1").CreateSecret("a", "v"); err != nil {
		t.Fatal(err)
	}
	usARN, err := s.CreateSecret("a", "v")
	if err != nil {
		t.Fatal(err)
	}
	id, secret := s.CreateUser("eu-reader", Policy{Allow: []Rule{{Actions: []string{opGet}, Resources: []string{"arn:aws:secretsmanager:eu-west-1:*"}}}})
	if err := getSecret(t, regionClients(t, s, "eu-west-1", id, secret), "a"); err != nil {
		t.Fatal(err)
	}
	err = getSecret(t, regionClients(t, s, "us-east-1", id, secret), "a")
	wantCode(t, err, "AccessDeniedException")
	if !strings.Contains(errorMessage(err), "on resource: "+usARN+" ") {
		t.Errorf("denial = %q", errorMessage(err))
	}
}

// Quotas are per region, as AWS's are per account and region.
func TestQuotaPerRegion(t *testing.T) {
	clock := newFakeClock(time.Now().UTC().Truncate(time.Second))
	s := start(t, Options{Now: clock.Now, Regions: []string{"eu-west-1"}})
	for _, r := range s.Regions() {
		if _, err := s.InRegion(r).CreateSecret("a", "v"); err != nil {
			t.Fatal(err)
		}
	}
	id, secret := s.CreateUser("admin", AllowAll)
	s.SetQuota(opGet, 1) // a burst of one; the stopped clock never refills it
	us, eu := regionClients(t, s, "us-east-1", id, secret), regionClients(t, s, "eu-west-1", id, secret)
	if err := getSecret(t, us, "a"); err != nil {
		t.Fatal(err)
	}
	if err := getSecret(t, eu, "a"); err != nil {
		t.Fatalf("eu-west-1 shares us-east-1's quota: %v", err)
	}
	wantCode(t, getSecret(t, us, "a"), "ThrottlingException")
	if n := s.Throttled(opGet); n != 1 {
		t.Errorf("Throttled = %d", n)
	}
}

func TestRegionOptions(t *testing.T) {
	for _, bad := range []Options{{Region: "EU_WEST"}, {Regions: []string{"eu-west-1", "a/b"}}} {
		if s, err := Start(bad); err == nil {
			s.Close()
			t.Errorf("Start(%+v) accepted a bad region name", bad)
		}
	}
	s := start(t, Options{Region: "eu-central-1", Regions: []string{"eu-central-1", "us-west-2", "us-west-2"}})
	if got := strings.Join(s.Regions(), ","); got != "eu-central-1,us-west-2" {
		t.Errorf("Regions = %s", got)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"us-east-1" is not served`) {
			t.Errorf("InRegion of a region not served: %v", r)
		}
	}()
	s.InRegion("us-east-1")
}

// Roles Anywhere trust anchors and profiles live in the region they were
// created in; CreateSession finds them in the region of its scope.
func TestCreateSessionRegions(t *testing.T) {
	clock := newFakeClock(time.Now().UTC().Truncate(time.Second))
	s := start(t, Options{Now: clock.Now, Regions: []string{"eu-west-1"}})
	f := raFixtureOn(t, s, clock)
	eu := s.InRegion("eu-west-1")
	euAnchor := eu.CreateTrustAnchor(f.root.Cert, TrustAnchorOptions{})
	euProfile := eu.CreateProfile(ProfileOptions{RoleARNs: []string{f.role}})
	if !strings.HasPrefix(euAnchor, "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/") ||
		!strings.HasPrefix(euProfile, "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/") {
		t.Errorf("ARNs = %s, %s", euAnchor, euProfile)
	}
	q := f.request(f.rsaLeaf)
	q.anchor, q.profile, q.region = euAnchor, euProfile, "eu-west-1"
	a := q.send(t, s)
	if a.status != http.StatusCreated || !strings.HasPrefix(a.out.SubjectArn, "arn:aws:rolesanywhere:eu-west-1:") {
		t.Fatalf("CreateSession in eu-west-1 = %d %s %s", a.status, a.errorType, a.message)
	}
	// The session's credentials work in every region: STS is global.
	cred := a.out.CredentialSet[0].Credentials
	cfg := sdkConfig(t, s, cred.AccessKeyID, cred.SecretAccessKey, cred.SessionToken)
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{}); err != nil {
		t.Errorf("eu-west-1 session credentials in us-east-1: %v", err)
	}

	q.region = "us-east-1" // the eu-west-1 anchor is not in us-east-1
	if a := q.send(t, s); a.status != http.StatusNotFound || a.errorType != "ResourceNotFoundException" {
		t.Errorf("eu-west-1 anchor in us-east-1 = %d %s", a.status, a.errorType)
	}
	q = f.request(f.rsaLeaf)
	q.region = "eu-west-1" // nor the us-east-1 anchor in eu-west-1
	if a := q.send(t, s); a.status != http.StatusNotFound || a.errorType != "ResourceNotFoundException" {
		t.Errorf("us-east-1 anchor in eu-west-1 = %d %s", a.status, a.errorType)
	}
	if err := s.SetEnabled(euProfile, false); err != nil {
		t.Fatal(err)
	}
	q = f.request(f.rsaLeaf)
	q.anchor, q.profile, q.region = euAnchor, euProfile, "eu-west-1"
	if a := q.send(t, s); a.status != http.StatusForbidden {
		t.Errorf("disabled eu-west-1 profile = %d %s", a.status, a.errorType)
	}
}
