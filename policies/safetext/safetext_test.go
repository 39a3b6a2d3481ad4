package safetext

import (
	"strings"
	"testing"
	"unicode"
)

// Hostile is a string with every kind of character that can leave the
// place it is printed in: line breaks, a YAML document marker, terminal
// escapes (colour, clear screen, OSC title and hyperlink), a carriage
// return that overwrites the line, bidirectional overrides, a zero-width
// space, the Unicode line separator, DEL, a C1 control and invalid UTF-8.
const Hostile = "x\n---\napiVersion: v1\r\x1b[31mred\x1b[2J\x1b]0;title\x07\x1b]8;;http://evil\x1b\\link\u202egnp.exe\u2066\u200b\u2028\x7f\u0085\xff# end"

func TestLineIsOnePrintableLine(t *testing.T) {
	got := Line(Hostile)
	for _, r := range got {
		if r != ' ' && (!unicode.IsPrint(r) || unicode.Is(unicode.Cf, r)) {
			t.Fatalf("Line left %U in %q", r, got)
		}
	}
	if strings.ContainsAny(got, "\n\r\x1b") {
		t.Fatalf("Line kept a control character: %q", got)
	}
	for _, want := range []string{`x\n---\napiVersion: v1\r\x1b[31mred`, `\u202egnp.exe`, `\u2028`, `\x7f`, `\u0085`, `\xff# end`} {
		if !strings.Contains(got, want) {
			t.Errorf("Line(%q) = %q, want it to contain %q", Hostile, got, want)
		}
	}
}

func TestLineKeepsPrintableText(t *testing.T) {
	for _, s := range []string{"", "plain", "registry.example/app:v1.2@sha256:abc", `C:\Users\app`, "naïve café ✅ 日本語 🚀", "tab-free, quotes \" ' and # hash"} {
		if got := Line(s); got != s {
			t.Errorf("Line(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestComment(t *testing.T) {
	got := Comment("a\n---\nkind: ClusterRoleBinding")
	if got != `# a\n---\nkind: ClusterRoleBinding` {
		t.Fatalf("Comment = %q", got)
	}
}

func TestSanitized(t *testing.T) {
	type inner struct {
		Text  string
		Alias myString
	}
	type outer struct {
		Name   string
		Ptr    *inner
		List   []inner
		Map    map[string]string
		Any    any
		Count  int
		hidden string
	}
	orig := outer{Name: "a\nb", Ptr: &inner{Text: "\x1b[2J", Alias: "c\rd"}, List: []inner{{Text: "\u202e"}},
		Map: map[string]string{"k\n": "v\x07"}, Any: "e\nf", Count: 3, hidden: "g\nh"}
	v := Sanitized(orig)
	if v.Name != `a\nb` || v.Ptr.Text != `\x1b[2J` || v.Ptr.Alias != `c\rd` || v.List[0].Text != `\u202e` || v.Count != 3 || v.Any != `e\nf` {
		t.Fatalf("Sanitized: %+v %+v", v, *v.Ptr)
	}
	if v.Map[`k\n`] != `v\a` || len(v.Map) != 1 {
		t.Fatalf("Sanitized map: %q", v.Map)
	}
	if v.hidden != "g\nh" {
		t.Fatalf("Sanitized changed an unexported field")
	}
	if orig.Name != "a\nb" || orig.Ptr.Text != "\x1b[2J" || orig.List[0].Text != "\u202e" || orig.Map["k\n"] != "v\x07" {
		t.Fatalf("Sanitized changed its argument: %+v", orig)
	}
}

type myString string
