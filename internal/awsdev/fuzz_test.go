package awsdev

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/rolesenv/rolesenv/internal/devpki"
)

// fuzzServer is an emulator that is never started: ServeHTTP is called
// directly. It holds a user, a secret, a parameter, a trust anchor, a
// profile and a role, so that parsing reaches past the lookups.
func fuzzServer(f *testing.F) *Server {
	s := newServer(Options{Regions: []string{"eu-west-1"}})
	s.CreateUser("admin", AllowAll)
	if err := s.AddAccessKey("admin", "AKIAFUZZFUZZFUZZFUZZ", "fuzzsecret"); err != nil {
		f.Fatal(err)
	}
	if _, err := s.CreateSecret("fuzz/secret", "v"); err != nil {
		f.Fatal(err)
	}
	if _, err := s.PutParameter("/fuzz/param", "String", "v"); err != nil {
		f.Fatal(err)
	}
	if _, err := s.InRegion("eu-west-1").CreateSecret("fuzz/secret", "eu"); err != nil {
		f.Fatal(err)
	}
	ca, err := devpki.NewCA(devpki.Options{CommonName: "Fuzz CA"})
	if err != nil {
		f.Fatal(err)
	}
	role := s.CreateRole("fuzz", RoleOptions{Policy: AllowAll, Conditions: map[string][]string{"x509Subject/CN": {"*"}}})
	s.CreateTrustAnchor(ca.Cert, TrustAnchorOptions{ID: "anchor"})
	s.CreateProfile(ProfileOptions{ID: "profile", RoleARNs: []string{role}})
	return s
}

// FuzzServeHTTP feeds whole requests to the emulator: the routing, the
// Authorization header, X-Amz-Date, the X-Amz-X509 and chain headers and
// the body. Nothing may panic; every answer is an AWS answer.
func FuzzServeHTTP(f *testing.F) {
	s := fuzzServer(f)
	f.Add("/", "secretsmanager.GetSecretValue",
		"AWS4-HMAC-SHA256 Credential=AKIAFUZZFUZZFUZZFUZZ/20240101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"20240101T000000Z", "", "", []byte(`{"SecretId":"fuzz/secret"}`))
	f.Add("/sessions?profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Aprofile%2Fprofile&roleArn=x&trustAnchorArn=y", "",
		"AWS4-X509-ECDSA-SHA256 Credential=1234/20240101/us-east-1/rolesanywhere/aws4_request, SignedHeaders=host;x-amz-date;x-amz-x509;x-amz-x509-chain, Signature=3044",
		"20240101T000000Z", "MIIB", "MIIB,MIIC", []byte(`{"durationSeconds":900}`))
	f.Add("/", "secretsmanager.GetSecretValue",
		"AWS4-HMAC-SHA256 Credential=AKIAFUZZFUZZFUZZFUZZ/20240101/eu-west-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"20240101T000000Z", "", "", []byte(`{"SecretId":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:fuzz/secret"}`))
	f.Add("/", "", "", "", "", "", []byte("Action=GetCallerIdentity&Version=2011-06-15"))
	f.Add("/", "AmazonSSM.GetParameters", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=, Signature=", "x", "", "", []byte(`{"Names":["/a:1"]}`))
	f.Fuzz(func(t *testing.T, path, target, auth, date, x509h, chain string, body []byte) {
		if len(path) == 0 || path[0] != '/' || strings.HasPrefix(path, controlPrefix) {
			return // the control API changes the emulator's behaviour; it is not AWS input
		}
		r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		for k, v := range map[string]string{"X-Amz-Target": target, "Authorization": auth, "X-Amz-Date": date, "X-Amz-X509": x509h, "X-Amz-X509-Chain": chain} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code < 200 || w.Code >= 600 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Code >= 400 && w.Header().Get("X-Amzn-ErrorType") == "" && !strings.Contains(w.Body.String(), "<ErrorResponse") {
			t.Fatalf("error answer %d without an error type: %s", w.Code, w.Body.String())
		}
	})
}

// FuzzOperations feeds JSON bodies to every operation as an authenticated
// administrator, past the signature that FuzzServeHTTP cannot forge.
func FuzzOperations(f *testing.F) {
	s := fuzzServer(f)
	var ops []string
	for op := range handlers {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	who := &principal{arn: s.users["admin"].arn, userID: s.users["admin"].id, user: s.users["admin"]}
	for i, body := range []string{
		`{"SecretId":"fuzz/secret","VersionStage":"AWSPREVIOUS"}`,
		`{"Name":"fuzz/new","SecretString":"x","ClientRequestToken":"00000000000000000000000000000000"}`,
		`{"SecretIdList":["fuzz/secret","arn:aws:secretsmanager:us-east-1:123456789012:secret:fuzz/secret"]}`,
		`{"Filters":[{"Key":"name","Values":["!fuzz"]}],"MaxResults":1,"NextToken":"1"}`,
		`{"SecretId":"fuzz/secret","VersionStage":"AWSCURRENT","MoveToVersionId":"x","RemoveFromVersionId":"y"}`,
		`{"Names":["/fuzz/param:1","/fuzz/param:label","/aws/reference/secretsmanager/fuzz/secret:AWSCURRENT"],"WithDecryption":true}`,
		`{"Names":["arn:aws:ssm:us-east-1:123456789012:parameter/fuzz/param:1","arn:aws:ssm:eu-west-1:1:parameter","arn:x"]}`,
		`{"Name":"/fuzz/param","Value":"v","Type":"StringList","Overwrite":true}`,
		`{"ParameterFilters":[{"Key":"Path","Option":"Recursive","Values":["/"]}]}`,
		`{"Name":"/fuzz/param","ParameterVersion":1,"Labels":["a","aws","1"]}`,
		`{"SecretId":"fuzz/secret","RecoveryWindowInDays":7}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		op := ops[int(which)%len(ops)]
		if op == "rolesanywhere:CreateSession" {
			return // authenticates itself; FuzzServeHTTP covers it
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		c := &call{r: r, body: body, op: op, who: who, reg: s.home, requestID: "fuzz"}
		_, aerr := handlers[op](s, c)
		if aerr != nil && (aerr.code == "" || aerr.status < 400) {
			t.Fatalf("%s: malformed error %+v", op, aerr)
		}
	})
}
