package exemption

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Glob semantics, one definition for the webhook, the CLI, the audit and
// the native export: * matches any run of characters (slashes and line
// breaks included, so "registry.example/team/*" covers every image below
// it), ? matches exactly one character, and everything else is literal. A
// character is a Unicode code point (a byte of invalid UTF-8 counts as one,
// as the JSON decoders that feed both forms turn it into U+FFFD).
// MatchGlob is the Go form; GlobRegexp the RE2 form CEL's matches() runs;
// a test holds them equal on multi-byte and control characters.

// MatchGlob reports whether s matches pattern.
func MatchGlob(pattern, s string) bool {
	px, sx := 0, 0
	// Where to resume after the last *, for backtracking.
	starP, starS := -1, 0
	for sx < len(s) {
		pr, pw := rune(-1), 0
		if px < len(pattern) {
			pr, pw = utf8.DecodeRuneInString(pattern[px:])
		}
		sr, sw := utf8.DecodeRuneInString(s[sx:])
		switch {
		case pr == '*':
			starP, starS = px, sx
			px += pw
		case pr == '?' || (pr >= 0 && pr == sr):
			px += pw
			sx += sw
		case starP >= 0:
			_, w := utf8.DecodeRuneInString(s[starS:])
			starS += w
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// MatchesAny reports whether s matches one of the globs.
func MatchesAny(globs []string, s string) bool {
	for _, g := range globs {
		if MatchGlob(g, s) {
			return true
		}
	}
	return false
}

// IsGlob reports whether s holds a glob character.
func IsGlob(s string) bool { return strings.ContainsAny(s, "*?") }

// GlobRegexp turns globs into one anchored RE2 expression that decides as
// MatchGlob does: (?s) so that . matches a line break too.
func GlobRegexp(globs []string) string {
	alts := make([]string, len(globs))
	for i, g := range globs {
		var b strings.Builder
		for _, r := range g {
			switch r {
			case '*':
				b.WriteString(".*")
			case '?':
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		alts[i] = b.String()
	}
	return "(?s)^(?:" + strings.Join(alts, "|") + ")$"
}

// GlobCEL is CEL for "x matches one of the globs": a list lookup for plain
// names (the common case, and cheaper), a regular expression for the rest.
func GlobCEL(x string, globs []string) string {
	var plain, patterns []string
	for _, g := range globs {
		if IsGlob(g) {
			patterns = append(patterns, g)
		} else {
			plain = append(plain, g)
		}
	}
	var parts []string
	if len(plain) > 0 {
		parts = append(parts, x+" in "+StringList(plain))
	}
	if len(patterns) > 0 {
		parts = append(parts, x+".matches("+strconv.Quote(GlobRegexp(patterns))+")")
	}
	return "(" + strings.Join(parts, " || ") + ")"
}

// StringList is a CEL list literal of strings. strconv.Quote's escapes
// (\n, \x1b, \u202e, \U0001f600) are all CEL string escapes too, so no
// value can end its literal.
func StringList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = strconv.Quote(it)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
