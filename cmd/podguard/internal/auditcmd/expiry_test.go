package auditcmd

import (
	"strings"
	"testing"
	"time"
)

// TestParseExpiry: --baseline-expires 1h used to write today's date (an
// exemption already expired) and 213504d overflowed to today.
func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 30, 0, 0, time.UTC)
	cases := []struct {
		in, text, err string
	}{
		{in: "90d", text: "2027-03-07"},
		{in: "1d", text: "2026-12-08"},
		{in: "1h", text: "2026-12-06T22:30:00Z"},
		{in: "2160h", text: "2027-03-06T21:30:00Z"},
		{in: "90m", text: "2026-12-06T23:00:00Z"},
		{in: "2027-03-31", text: "2027-03-31"},
		{in: "2027-03-31T12:00:00Z", text: "2027-03-31T12:00:00Z"},
		{in: "213504d", err: "more than 100 years"},
		{in: "2562048h", err: "want days"}, // past time.Duration's range
		{in: "0d", err: "in the future"},
		{in: "-1h", err: "in the future"},
		{in: "2026-12-06", err: "in the future"},
		{in: "2020-01-01T00:00:00Z", err: "in the future"},
		{in: "soon", err: "want days"},
		{in: "d", err: "want days"},
	}
	for _, c := range cases {
		text, at, err := parseExpiry(c.in, now)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || text != c.text || !at.After(now) {
			t.Errorf("%s: %q %v %v, want %q in the future", c.in, text, at, err, c.text)
		}
	}
}
