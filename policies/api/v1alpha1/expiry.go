package v1alpha1

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ExpiryFrom reads an expiry given relative to now or absolutely: days
// (90d, rounded up to the next midnight UTC), a Go duration (2160h), a
// date (2027-03-31) or an RFC 3339 timestamp. It must be in the future
// and under 100 years away. It returns the text to write in expires and
// the time it means.
func ExpiryFrom(v string, now time.Time) (string, time.Time, error) {
	bad := fmt.Errorf("%q: want days (90d), a duration (2160h), a date (2027-03-31) or an RFC 3339 timestamp", v)
	var t time.Time
	var text string
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return "", time.Time{}, bad
		}
		if n <= 0 {
			return "", time.Time{}, fmt.Errorf("%q: must be in the future", v)
		}
		if n > 365*100 {
			return "", time.Time{}, fmt.Errorf("%q: more than 100 years; an exemption is meant to end", v)
		}
		// A date, rounded up to the next midnight (UTC): never earlier than asked.
		t = now.UTC().AddDate(0, 0, n)
		if !t.Equal(t.Truncate(24 * time.Hour)) {
			t = t.Truncate(24*time.Hour).AddDate(0, 0, 1)
		}
		text = t.Format(time.DateOnly)
	} else if d, err := time.ParseDuration(v); err == nil {
		// Hours and minutes keep their precision: "1h" is an hour, not today's date.
		t = now.UTC().Add(d).Truncate(time.Second)
		if d > 0 && !t.After(now) {
			t = t.Add(time.Second)
		}
		text = t.Format(time.RFC3339)
	} else if t, err = ParseExpiry(v); err == nil {
		text = v
	} else {
		return "", time.Time{}, bad
	}
	if !t.After(now) {
		return "", time.Time{}, fmt.Errorf("%q: must be in the future (it ends at %s)", v, t.Format(time.RFC3339))
	}
	return text, t, nil
}

// ParseDuration reads a span as days (90d) or a Go duration (2160h).
func ParseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q: want a number of days (90d) or a duration (2160h)", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a number of days (90d) or a duration (2160h)", v)
	}
	return d, nil
}
