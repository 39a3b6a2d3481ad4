package testenv

import (
	"os"
	"strings"
	"testing"
)

// GeneratedSection keeps the part of a file between two marker lines
// equal to want: with update it writes want there, otherwise it fails the
// test when the file differs, saying how to regenerate it. The README's
// tables of rules and of the checklist are kept this way.
func GeneratedSection(t *testing.T, path, begin, end, want string, update bool, how string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated section (markers %q ... %q)", path, begin, end)
	}
	if update {
		if err := os.WriteFile(path, []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := s[i+len(begin) : j]; got != want {
		t.Errorf("%s: the generated section is stale: %s\n--- file\n%s--- generated\n%s", path, how, got, want)
	}
}
