package inject

import (
	"fmt"
	"io"
	"log/slog"
)

// redactedText is what every formatting path prints for a type that holds
// values.
const redactedText = "[redacted]"

// redacted, embedded in a type, makes every generic way of printing it
// print "[redacted]": fmt with any verb (String, GoString, Format),
// encoding/json and encoding/text (MarshalJSON, MarshalText) and log/slog
// (LogValue). Types that hold resolved values, literals from env files or
// credentials embed it.
type redacted struct{}

func (redacted) String() string   { return redactedText }
func (redacted) GoString() string { return redactedText }

func (redacted) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedText) }

func (redacted) MarshalText() ([]byte, error) { return []byte(redactedText), nil }
func (redacted) MarshalJSON() ([]byte, error) { return []byte(`"` + redactedText + `"`), nil }

func (redacted) LogValue() slog.Value { return slog.StringValue(redactedText) }
