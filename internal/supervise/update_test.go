package supervise

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// An Update carries the child's new environment, resolved secrets
// included: every generic way of printing it shows the reason only.
func TestUpdatePrintsNoEnvironment(t *testing.T) {
	u := Update{Env: []string{"PASSWORD=SNTL-value"}, Reason: "app/db rotated"}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%T %v", "%10.3s"} {
		for _, x := range []any{u, &u, []any{u}, struct{ U Update }{u}} {
			outs = append(outs, fmt.Sprintf(verb, x))
		}
	}
	if b, err := json.Marshal(u); err == nil {
		outs = append(outs, string(b))
	} else {
		t.Error(err)
	}
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("update", "u", u)
	slog.New(slog.NewJSONHandler(&log, nil)).Info("update", "u", u)
	outs = append(outs, log.String())
	for _, out := range outs {
		if strings.Contains(out, "SNTL") {
			t.Errorf("an update prints its environment: %s", out)
		}
	}
	if got := fmt.Sprint(u); !strings.Contains(got, "app/db rotated") {
		t.Errorf("an update prints %q, without its reason", got)
	}
}
