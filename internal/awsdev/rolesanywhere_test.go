package awsdev

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rolesenv/rolesenv/internal/devpki"
)

// raRequest is one CreateSession request, signed by the minimal signer
// below. The signer is written here from the Roles Anywhere documentation
// ("signing process") and shares no code with the emulator or with
// package signer: it is the reference the verifier is tested against.
type raRequest struct {
	profile, role, anchor string
	body                  string
	leaf                  *devpki.Cert
	chain                 []*x509.Certificate
	date                  time.Time
	region                string
	signer                crypto.Signer       // overrides leaf.Key
	tamper                func(*http.Request) // runs after signing
}

type raAnswer struct {
	status    int
	errorType string
	message   string
	out       raCreateSessionOutput
}

func (q raRequest) send(t *testing.T, s *Server) raAnswer {
	t.Helper()
	query := url.Values{"profileArn": {q.profile}, "roleArn": {q.role}, "trustAnchorArn": {q.anchor}}.Encode()
	r, err := http.NewRequest(http.MethodPost, s.URL()+"/sessions?"+query, strings.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	amzDate := q.date.UTC().Format("20060102T150405Z")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-X509", base64.StdEncoding.EncodeToString(q.leaf.Cert.Raw))
	headers := map[string]string{
		"content-type": "application/json",
		"host":         r.URL.Host,
		"x-amz-date":   amzDate,
		"x-amz-x509":   r.Header.Get("X-Amz-X509"),
	}
	if len(q.chain) > 0 {
		var parts []string
		for _, c := range q.chain {
			parts = append(parts, base64.StdEncoding.EncodeToString(c.Raw))
		}
		r.Header.Set("X-Amz-X509-Chain", strings.Join(parts, ","))
		headers["x-amz-x509-chain"] = r.Header.Get("X-Amz-X509-Chain")
	}
	var names []string
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)
	var canonical strings.Builder
	canonical.WriteString("POST\n/sessions\n" + query + "\n")
	for _, n := range names {
		canonical.WriteString(n + ":" + headers[n] + "\n")
	}
	bodySum := sha256.Sum256([]byte(q.body))
	canonical.WriteString("\n" + strings.Join(names, ";") + "\n" + hex.EncodeToString(bodySum[:]))

	key := q.signer
	if key == nil {
		key = q.leaf.Key
	}
	alg := "AWS4-X509-ECDSA-SHA256"
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		alg = "AWS4-X509-RSA-SHA256"
	}
	scope := amzDate[:8] + "/" + q.region + "/rolesanywhere/aws4_request"
	crSum := sha256.Sum256([]byte(canonical.String()))
	toSign := alg + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crSum[:])
	digest := sha256.Sum256([]byte(toSign))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", alg+" Credential="+q.leaf.Cert.SerialNumber.String()+"/"+scope+
		", SignedHeaders="+strings.Join(names, ";")+", Signature="+hex.EncodeToString(sig))
	if q.tamper != nil {
		q.tamper(r)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := raAnswer{status: resp.StatusCode, errorType: resp.Header.Get("X-Amzn-ErrorType")}
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &a.out); err != nil {
			t.Fatalf("bad CreateSession answer: %v", err)
		}
	} else {
		var e struct{ Message string }
		_ = json.Unmarshal(raw, &e)
		a.message = e.Message
	}
	return a
}

// raFixture is a CA hierarchy, a trust anchor, a profile and a role.
type raFixture struct {
	s                     *Server
	clock                 *fakeClock
	root, inter1, inter2  *devpki.Cert
	rsaLeaf, ecLeaf       *devpki.Cert
	anchor, profile, role string
	secretARN             string
}

func newRAFixture(t *testing.T) *raFixture {
	t.Helper()
	clock := newFakeClock(time.Now().UTC().Truncate(time.Second))
	return raFixtureOn(t, start(t, Options{Now: clock.Now}), clock)
}

// raFixtureOn sets the fixture up on a running emulator whose clock is clock.
func raFixtureOn(t *testing.T, s *Server, clock *fakeClock) *raFixture {
	t.Helper()
	f := &raFixture{s: s, clock: clock}
	var err error
	must := func(c *devpki.Cert, err error) *devpki.Cert {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.root = must(devpki.NewCA(devpki.Options{CommonName: "Test Root"}))
	f.inter1 = must(f.root.Intermediate(devpki.Options{CommonName: "Test Inter 1"}))
	f.inter2 = must(f.inter1.Intermediate(devpki.Options{CommonName: "Test Inter 2"}))
	f.rsaLeaf = must(f.root.Leaf(devpki.Options{CommonName: "web-1", KeyType: devpki.RSA2048, DNSNames: []string{"web-1.example.com"}}))
	f.ecLeaf = must(f.inter2.Leaf(devpki.Options{CommonName: "web-2", KeyType: devpki.P256}))
	f.secretARN, err = f.s.CreateSecret("app/db", "s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	f.role = f.s.CreateRole("app", RoleOptions{
		Policy:     Policy{Allow: []Rule{{Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{f.secretARN}}}},
		Conditions: map[string][]string{"x509Subject/CN": {"web-*"}, "x509Issuer/CN": {"Test Root", "Test Inter 2"}},
	})
	f.anchor = f.s.CreateTrustAnchor(f.root.Cert, TrustAnchorOptions{})
	f.profile = f.s.CreateProfile(ProfileOptions{RoleARNs: []string{f.role}})
	return f
}

func (f *raFixture) request(leaf *devpki.Cert) raRequest {
	q := raRequest{profile: f.profile, role: f.role, anchor: f.anchor, body: `{"durationSeconds":900}`,
		leaf: leaf, date: f.clock.Now(), region: "us-east-1"}
	if leaf == f.ecLeaf {
		q.chain = []*x509.Certificate{f.inter2.Cert, f.inter1.Cert}
	}
	return q
}

func TestCreateSessionValid(t *testing.T) {
	f := newRAFixture(t)
	for _, leaf := range []*devpki.Cert{f.rsaLeaf, f.ecLeaf} {
		a := f.request(leaf).send(t, f.s)
		if a.status != http.StatusCreated {
			t.Fatalf("%s: status %d %s: %s", leaf.Cert.Subject.CommonName, a.status, a.errorType, a.message)
		}
		if len(a.out.CredentialSet) != 1 {
			t.Fatalf("credentialSet = %+v", a.out.CredentialSet)
		}
		set := a.out.CredentialSet[0]
		session := leaf.Cert.SerialNumber.Text(16)
		wantARN := "arn:aws:sts::123456789012:assumed-role/app/" + session
		if set.AssumedRoleUser.Arn != wantARN || set.RoleArn != f.role || set.SourceIdentity != "CN="+leaf.Cert.Subject.CommonName {
			t.Errorf("credential set = %+v", set)
		}
		exp, err := time.Parse(time.RFC3339, set.Credentials.Expiration)
		if err != nil || !exp.Equal(f.clock.Now().Add(900*time.Second)) {
			t.Errorf("expiration = %q (%v), want now + 900s", set.Credentials.Expiration, err)
		}
		if !strings.HasPrefix(a.out.SubjectArn, "arn:aws:rolesanywhere:us-east-1:123456789012:subject/") {
			t.Errorf("subjectArn = %q", a.out.SubjectArn)
		}

		// The credentials authenticate as the assumed role, with its policy.
		c := newClients(sdkConfig(t, f.s, set.Credentials.AccessKeyID, set.Credentials.SecretAccessKey, set.Credentials.SessionToken))
		id, err := c.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if *id.Arn != wantARN {
			t.Errorf("GetCallerIdentity = %s, want %s", *id.Arn, wantARN)
		}
		got, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
		if err != nil || *got.SecretString != "s3cr3t" {
			t.Fatalf("GetSecretValue: %v", err)
		}
		_, err = c.sm.DescribeSecret(ctx(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/db")})
		wantCode(t, err, "AccessDeniedException")
		if !strings.Contains(errorMessage(err), "User: "+wantARN+" is not authorized to perform: secretsmanager:DescribeSecret on resource: "+f.secretARN) {
			t.Errorf("denial = %q", errorMessage(err))
		}
	}
}

func TestCreateSessionRoleSessionName(t *testing.T) {
	f := newRAFixture(t)
	q := f.request(f.rsaLeaf)
	q.body = `{"roleSessionName":"deploy-7"}`
	a := q.send(t, f.s)
	if a.status != http.StatusCreated || a.out.CredentialSet[0].AssumedRoleUser.Arn != "arn:aws:sts::123456789012:assumed-role/app/deploy-7" {
		t.Fatalf("answer = %+v", a)
	}
	strict := f.s.CreateProfile(ProfileOptions{RoleARNs: []string{f.role}, RejectRoleSessionName: true})
	q.profile = strict
	if a := q.send(t, f.s); a.errorType != "AccessDeniedException" {
		t.Errorf("roleSessionName on a profile that rejects it: %+v", a)
	}
	// Without a duration the profile's own applies.
	q = f.request(f.rsaLeaf)
	q.body = `{}`
	a = q.send(t, f.s)
	exp, _ := time.Parse(time.RFC3339, a.out.CredentialSet[0].Credentials.Expiration)
	if !exp.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("default expiration = %s", exp)
	}
}

func TestCreateSessionRejected(t *testing.T) {
	f := newRAFixture(t)
	mustCert := func(c *devpki.Cert, err error) *devpki.Cert {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	now := f.clock.Now()
	expired := mustCert(f.root.Leaf(devpki.Options{CommonName: "web-old", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}))
	future := mustCert(f.root.Leaf(devpki.Options{CommonName: "web-new", NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)}))
	otherCA := mustCert(devpki.NewCA(devpki.Options{CommonName: "Test Root"}))
	untrusted := mustCert(otherCA.Leaf(devpki.Options{CommonName: "web-3"}))
	wrongCN := mustCert(f.root.Leaf(devpki.Options{CommonName: "db-1"}))
	otherKey, err := devpki.NewKey(devpki.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	disabledAnchor := f.s.CreateTrustAnchor(f.root.Cert, TrustAnchorOptions{Disabled: true})
	otherRole := f.s.CreateRole("other", RoleOptions{Policy: AllowAll})
	otherAnchor := f.s.CreateTrustAnchor(f.root.Cert, TrustAnchorOptions{})

	tests := []struct {
		name   string
		edit   func(q *raRequest)
		status int
		typ    string
	}{
		{"tampered body", func(q *raRequest) {
			q.tamper = func(r *http.Request) {
				body := `{"durationSeconds":901}`
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			}
		}, 403, "AccessDeniedException"},
		{"tampered header", func(q *raRequest) {
			q.tamper = func(r *http.Request) { r.Header.Set("Content-Type", "application/x-amz-json-1.1") }
		}, 403, "AccessDeniedException"},
		{"tampered query", func(q *raRequest) {
			q.tamper = func(r *http.Request) {
				v := r.URL.Query()
				v.Set("trustAnchorArn", otherAnchor) // valid too: only the signature catches it
				r.URL.RawQuery = v.Encode()
			}
		}, 403, "AccessDeniedException"},
		{"unsigned chain", func(q *raRequest) {
			q.leaf, q.chain = f.ecLeaf, nil
			q.tamper = func(r *http.Request) {
				r.Header.Set("X-Amz-X509-Chain", base64.StdEncoding.EncodeToString(f.inter2.Cert.Raw)+","+base64.StdEncoding.EncodeToString(f.inter1.Cert.Raw))
			}
		}, 403, "AccessDeniedException"},
		{"wrong key", func(q *raRequest) { q.signer = otherKey }, 403, "AccessDeniedException"},
		{"expired certificate", func(q *raRequest) { q.leaf = expired }, 403, "AccessDeniedException"},
		{"not yet valid certificate", func(q *raRequest) { q.leaf = future }, 403, "AccessDeniedException"},
		{"untrusted CA", func(q *raRequest) { q.leaf = untrusted }, 403, "AccessDeniedException"},
		{"missing intermediates", func(q *raRequest) { q.leaf, q.chain = f.ecLeaf, nil }, 403, "AccessDeniedException"},
		{"wrong region", func(q *raRequest) { q.region = "eu-west-1" }, 403, "AccessDeniedException"},
		{"stale date", func(q *raRequest) { q.date = now.Add(-6 * time.Minute) }, 403, "AccessDeniedException"},
		{"future date", func(q *raRequest) { q.date = now.Add(6 * time.Minute) }, 403, "AccessDeniedException"},
		{"duration too short", func(q *raRequest) { q.body = `{"durationSeconds":899}` }, 400, "ValidationException"},
		{"duration over the profile", func(q *raRequest) { q.body = `{"durationSeconds":3601}` }, 400, "ValidationException"},
		{"duration over 12 hours", func(q *raRequest) { q.body = `{"durationSeconds":43201}` }, 400, "ValidationException"},
		{"failing CN condition", func(q *raRequest) { q.leaf = wrongCN }, 403, "AccessDeniedException"},
		{"unknown profile", func(q *raRequest) { q.profile += "0" }, 404, "ResourceNotFoundException"},
		{"unknown trust anchor", func(q *raRequest) { q.anchor += "0" }, 404, "ResourceNotFoundException"},
		{"disabled trust anchor", func(q *raRequest) { q.anchor = disabledAnchor }, 403, "AccessDeniedException"},
		{"role not in profile", func(q *raRequest) { q.role = otherRole }, 403, "AccessDeniedException"},
		{"missing role ARN", func(q *raRequest) { q.role = "" }, 400, "ValidationException"},
		{"bad JSON", func(q *raRequest) { q.body = `{` }, 400, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := f.request(f.rsaLeaf)
			tt.edit(&q)
			a := q.send(t, f.s)
			if a.status != tt.status || a.errorType != tt.typ {
				t.Errorf("got %d %s (%s), want %d %s", a.status, a.errorType, a.message, tt.status, tt.typ)
			}
		})
	}
	if n := f.s.Calls("rolesanywhere:CreateSession"); n != int64(len(tests)) {
		t.Errorf("CreateSession calls = %d, want %d", n, len(tests))
	}
}

func TestCreateSessionECDSAKeyWithRSAAlgorithmFails(t *testing.T) {
	f := newRAFixture(t)
	q := f.request(f.ecLeaf)
	q.tamper = func(r *http.Request) {
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-X509-ECDSA-SHA256", "AWS4-X509-RSA-SHA256", 1))
	}
	if a := q.send(t, f.s); a.errorType != "AccessDeniedException" {
		t.Errorf("answer = %+v", a)
	}
	// The key types are what they claim to be.
	if _, ok := f.ecLeaf.Key.Public().(*ecdsa.PublicKey); !ok {
		t.Fatal("EC leaf has no EC key")
	}
}

func TestSessionCredentialsExpireAndRevoke(t *testing.T) {
	f := newRAFixture(t)
	f.s.SetCredentialLifetime(time.Minute)
	a := f.request(f.rsaLeaf).send(t, f.s)
	cred := a.out.CredentialSet[0].Credentials
	exp, _ := time.Parse(time.RFC3339, cred.Expiration)
	if !exp.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("expiration = %s, want now + 1m", cred.Expiration)
	}
	c := newClients(sdkConfig(t, f.s, cred.AccessKeyID, cred.SecretAccessKey, cred.SessionToken))
	if _, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")}); err != nil {
		t.Fatal(err)
	}
	// Revoked access applies at once to existing sessions.
	if err := f.s.SetRolePolicy("app", Policy{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	wantCode(t, err, "AccessDeniedException")

	f.clock.Add(61 * time.Second)
	_, err = c.sm.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	wantCode(t, err, "ExpiredTokenException")
	_, err = c.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	wantCode(t, err, "ExpiredToken")

	// ExpireCredentials ends sessions that have not expired yet; a wrong
	// session token is an unknown credential.
	f.s.SetCredentialLifetime(0)
	a = f.request(f.rsaLeaf).send(t, f.s)
	cred = a.out.CredentialSet[0].Credentials
	wrongToken := newClients(sdkConfig(t, f.s, cred.AccessKeyID, cred.SecretAccessKey, cred.SessionToken+"x"))
	_, err = wrongToken.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	wantCode(t, err, "InvalidClientTokenId")
	c = newClients(sdkConfig(t, f.s, cred.AccessKeyID, cred.SecretAccessKey, cred.SessionToken))
	if _, err := c.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	f.s.ExpireCredentials()
	_, err = c.sts.GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	wantCode(t, err, "ExpiredToken")
}

func TestSessionExpiresWithCertificate(t *testing.T) {
	f := newRAFixture(t)
	now := f.clock.Now()
	short, err := f.root.Leaf(devpki.Options{CommonName: "web-short", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	q := f.request(short)
	q.body = `{"durationSeconds":3600}`
	a := q.send(t, f.s)
	if a.status != http.StatusCreated {
		t.Fatalf("answer = %+v", a)
	}
	if exp := a.out.CredentialSet[0].Credentials.Expiration; exp != short.Cert.NotAfter.UTC().Format(time.RFC3339) {
		t.Errorf("expiration = %s, want the certificate's NotAfter %s", exp, short.Cert.NotAfter)
	}
}
