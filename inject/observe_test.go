package inject

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/smithy-go"
)

// TestCallOutcome: the outcome of one AWS request, by the resolver's
// tables of codes.
func TestCallOutcome(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{api("ThrottlingException"), "throttled"},
		{api("TooManyRequestsException"), "throttled"},
		{api("AccessDeniedException"), "denied"},
		{api("ExpiredTokenException"), "denied"},
		{api("ResourceNotFoundException"), "error"},
		{api("InternalServiceError"), "error"},
		{context.DeadlineExceeded, "error"},
		{errors.New("connection reset"), "error"},
	} {
		if got := CallOutcome(tc.err); got != tc.want {
			t.Errorf("CallOutcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
