package inject_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rolesenv/rolesenv/inject"
	"github.com/rolesenv/rolesenv/internal/awsdev"
)

// A template without references renders without AWS. An Env prints as
// [redacted]; its values come out through Environ.
func ExampleParse() {
	files := []inject.File{{Name: "app.env", Data: []byte("HOST=localhost\nURL=http://${HOST}:8080\nGREETING='hello, ${HOST}'\n")}}
	tm, err := inject.Parse(files, inject.Options{CleanEnv: true})
	if err != nil {
		panic(err)
	}
	env, err := tm.Render(inject.NewValues())
	if err != nil {
		panic(err)
	}
	fmt.Println(env)
	for _, kv := range env.Environ() {
		fmt.Println(kv)
	}
	// Output:
	// [redacted]
	// GREETING=hello, ${HOST}
	// HOST=localhost
	// URL=http://localhost:8080
}

// Load resolves a template's references; here against rolesenv's
// in-process AWS emulator.
func ExampleLoad() {
	s, err := awsdev.Start(awsdev.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if _, err := s.CreateSecret("app/db", `{"user":"app","password":"example-password"}`); err != nil {
		panic(err)
	}
	id, key := s.CreateUser("app", awsdev.AllowAll)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.CAPEM())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(id, key, ""),
		BaseEndpoint: aws.String(s.URL()),
		HTTPClient:   &http.Client{Transport: tr},
	}

	files := []inject.File{{Name: "app.env", Data: []byte("MODE=production\nDB_USER=sm://app/db#user\nDB_PASSWORD=sm://app/db#password\n")}}
	src, err := inject.Load(context.Background(), files, inject.LoadOptions{
		Options: inject.Options{CleanEnv: true},
		// Asked for only because the template has references.
		Config: func(context.Context) (aws.Config, error) { return cfg, nil },
	})
	if err != nil {
		panic(err)
	}
	env := src.Env()
	for _, name := range env.Names() {
		v, _ := env.Lookup(name)
		fmt.Printf("%s %v sensitive=%v\n", name, v, v.Sensitive())
	}
	pw, _ := env.Lookup("DB_PASSWORD")
	fmt.Println(pw.Reveal() == "example-password", src.Calls(), "request")
	// Output:
	// DB_PASSWORD [redacted] sensitive=true
	// DB_USER [redacted] sensitive=true
	// MODE [redacted] sensitive=false
	// true 1 request
}
