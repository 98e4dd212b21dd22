package metrics_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/rolesenv/rolesenv/internal/metrics"
)

// A State is fed by rolesenv's parts as things happen, and read by a
// scrape.
func Example() {
	st := metrics.New("1.0.0")
	st.Check(time.Now(), true, 0)
	st.Rotated(1)
	st.APICall("secretsmanager", "DescribeSecret", metrics.OutcomeThrottled, 20*time.Millisecond)
	var b strings.Builder
	_ = st.WriteText(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "rolesenv_rotations_total") || strings.HasPrefix(line, "rolesenv_aws_api_calls_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// rolesenv_rotations_total 1
	// rolesenv_aws_api_calls_total{service="secretsmanager",operation="DescribeSecret",outcome="throttled"} 1
}
