package check

import (
	"testing"

	"github.com/rolesenv/rolesenv/inject"
)

func TestParseDenial(t *testing.T) {
	tests := []struct {
		msg              string
		action, resource string
		explicit         bool
	}{
		{"User: arn:aws:sts::123456789012:assumed-role/app/1a is not authorized to perform: secretsmanager:GetSecretValue " +
			"on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf because no identity-based policy allows " +
			"the secretsmanager:GetSecretValue action",
			"secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf", false},
		{"User: arn:aws:iam::123456789012:user/u is not authorized to perform: ssm:GetParameters on resource: " +
			"arn:aws:ssm:eu-west-1:123456789012:parameter/a/b with an explicit deny in an identity-based policy",
			"ssm:GetParameters", "arn:aws:ssm:eu-west-1:123456789012:parameter/a/b", true},
		{"User: arn:aws:iam::1:user/u is not authorized to perform: ssm:DescribeParameters on resource: arn:aws:ssm:us-east-1:1:*",
			"ssm:DescribeParameters", "arn:aws:ssm:us-east-1:1:*", false},
		{"Access to KMS is not allowed", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		a, r, e := parseDenial(tt.msg)
		if a != tt.action || r != tt.resource || e != tt.explicit {
			t.Errorf("parseDenial(%q) = %q, %q, %v; want %q, %q, %v", tt.msg, a, r, e, tt.action, tt.resource, tt.explicit)
		}
	}
}

func TestResourceARN(t *testing.T) {
	p := Principal{ARN: "arn:aws:sts::123456789012:assumed-role/app/s", Region: "eu-west-1"}
	tests := []struct {
		f    inject.Fetch
		p    Principal
		want string
	}{
		{inject.Fetch{Service: inject.SecretsManager, ID: "prod/db", Stage: "AWSCURRENT"}, p,
			"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-??????"},
		{inject.Fetch{Service: inject.SecretsManager, ID: "prod/db", Region: "us-west-2"}, p,
			"arn:aws:secretsmanager:us-west-2:123456789012:secret:prod/db-??????"},
		{inject.Fetch{Service: inject.SecretsManager, ID: "arn:aws:secretsmanager:us-east-1:1:secret:x-AbCdEf"}, p,
			"arn:aws:secretsmanager:us-east-1:1:secret:x-AbCdEf"},
		{inject.Fetch{Service: inject.ParameterStore, ID: "/a/b"}, p, "arn:aws:ssm:eu-west-1:123456789012:parameter/a/b"},
		{inject.Fetch{Service: inject.ParameterStore, ID: "plain"}, Principal{}, "arn:aws:ssm:*:*:parameter/plain"},
		{inject.Fetch{Service: inject.SecretsManager, ID: "x"}, Principal{ARN: "arn:aws-cn:iam::1:user/u", Region: "cn-north-1"},
			"arn:aws-cn:secretsmanager:cn-north-1:1:secret:x-??????"},
	}
	for _, tt := range tests {
		if got := resourceARN(tt.f, tt.p); got != tt.want {
			t.Errorf("resourceARN(%+v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestPolicyHolder(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:sts::123456789012:assumed-role/app/3a50e7df": "arn:aws:iam::123456789012:role/app",
		"arn:aws:iam::123456789012:user/deploy":               "arn:aws:iam::123456789012:user/deploy",
		"":                                                    "",
	} {
		if got := (Principal{ARN: arn}).PolicyHolder(); got != want {
			t.Errorf("PolicyHolder(%q) = %q, want %q", arn, got, want)
		}
	}
}

func TestDenialHints(t *testing.T) {
	f := inject.Fetch{Service: inject.SecretsManager, ID: "x"}
	p := Principal{ARN: "arn:aws:iam::1:user/u"}
	tests := []struct {
		fl        failure
		statement bool
		hint      string
	}{
		{failure{code: "AccessDeniedException", denied: true}, true, "add this statement to the identity policy of arn:aws:iam::1:user/u"},
		{failure{code: "HTTP 403", denied: true}, true, "add this statement to the identity policy of arn:aws:iam::1:user/u"},
		{failure{code: "AccessDeniedException", denied: true, explicitDeny: true}, false, "an explicit Deny statement refused it; an Allow cannot override a Deny, so change the statement that denies"},
		{failure{code: "AccessDeniedException", msg: "Access to KMS is not allowed", denied: true}, false,
			"the secret's KMS key refused decryption: allow kms:Decrypt on that key to arn:aws:iam::1:user/u (in the identity policy and the key policy)"},
		{failure{code: "UnrecognizedClientException", denied: true}, false, "AWS did not accept the credentials (UnrecognizedClientException); check the credentials row"},
	}
	for _, tt := range tests {
		var r Row
		denial(&r, tt.fl, "secretsmanager:GetSecretValue", resourceARN(f, p), p)
		if (r.Statement != nil) != tt.statement || r.Hint != tt.hint {
			t.Errorf("%+v: statement %v, hint %q; want %v, %q", tt.fl, r.Statement, r.Hint, tt.statement, tt.hint)
		}
		if r.Action != "secretsmanager:GetSecretValue" || r.Resource != "arn:aws:secretsmanager:*:1:secret:x-??????" {
			t.Errorf("action %q resource %q", r.Action, r.Resource)
		}
	}
}
