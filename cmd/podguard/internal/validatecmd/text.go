package validatecmd

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/term"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/safetext"
)

// textWriter prints results for people (-o text): one block per object
// with findings, its namespace and name in the heading, each finding as
// "deny|warn|audit <rule>: <field> (line L)" and its message and fix
// indented below, wrapped at the terminal's width. Colour only on a
// terminal, never with NO_COLOR set (https://no-color.org) or TERM=dumb.
// With lines set it prints the grep-friendly form of -o lines: one line per
// finding, "source kind/name: rule: field: message (fix: ...)".
type textWriter struct {
	w       io.Writer
	verbose bool
	lines   bool
	// width wraps messages (0: no wrapping, as when writing to a file).
	width   int
	colour  bool
	skipped []Skipped
}

// newTextWriter looks at w: a terminal gets wrapping at its width (or
// $COLUMNS) and colour.
func newTextWriter(w io.Writer, verbose bool) *textWriter {
	t := &textWriter{w: w, verbose: verbose}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return t
	}
	t.width = 100
	if cols, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && cols > 0 {
		t.width = cols
	} else if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
		t.width = cols
	}
	t.colour = os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return t
}

// ANSI styles.
const (
	bold   = "1"
	red    = "31"
	yellow = "33"
	cyan   = "36"
	dim    = "2"
)

func (t *textWriter) paint(style, s string) string {
	if !t.colour {
		return s
	}
	return "\x1b[" + style + "m" + s + "\x1b[0m"
}

func (t *textWriter) result(res Result) error {
	// Names, images, reasons and paths come from the input and the policy:
	// printed one line each, their control characters made visible, so an
	// object cannot forge lines or escape sequences in a terminal or a CI log.
	res = safetext.Sanitized(res)
	if t.lines {
		return t.resultLines(res)
	}
	n := len(res.Violations) + len(res.Warnings) + len(res.Audits) + len(res.Exempted)
	if n == 0 && !t.verbose {
		return nil
	}
	var b strings.Builder
	who := res.Name
	if res.Namespace != "" {
		who = res.Namespace + "/" + res.Name
	}
	verdict := t.paint(bold+";"+red, "denied")
	if res.Allowed {
		verdict = "allowed"
	}
	var counts []string
	for _, c := range []struct {
		n         int
		one, many string
	}{{len(res.Violations), "violation", "violations"}, {len(res.Warnings), "warning", "warnings"}, {len(res.Audits), "audit finding", "audit findings"}} {
		if c.n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", c.n, safetext.Plural(c.n, c.one, c.many)))
		}
	}
	if len(counts) > 0 {
		verdict += " (" + strings.Join(counts, ", ") + ")"
	}
	fmt.Fprintf(&b, "%s %s %s: %s\n", t.paint(bold, res.Kind), t.paint(bold, who), t.paint(dim, "["+res.Source+"]"), verdict)
	finding := func(label, style string, f policies.Finding) {
		where := f.Field
		if f.Line > 0 {
			where += fmt.Sprintf(" (line %d)", f.Line)
		}
		fmt.Fprintf(&b, "  %s %s: %s\n", t.paint(style, fmt.Sprintf("%-5s", label)), f.Rule, where)
		t.wrap(&b, "        ", f.Message+"; fix: "+f.FixHere())
	}
	for _, f := range res.Violations {
		finding("deny", bold+";"+red, f)
	}
	for _, f := range res.Warnings {
		finding("warn", yellow, f)
	}
	for _, f := range res.Audits {
		finding("audit", cyan, f)
	}
	for _, x := range res.Exempted {
		text := x.Reason
		if x.Expires != "" {
			text += " (expires " + x.Expires + ")"
		}
		fmt.Fprintf(&b, "  %s %s\n", t.paint(cyan, "exempted from"), x.Rule)
		t.wrap(&b, "        ", text)
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

// wrap writes text after indent, broken at spaces to fit t.width.
func (t *textWriter) wrap(b *strings.Builder, indent, text string) {
	limit := t.width - len(indent)
	if t.width == 0 || limit < 20 {
		b.WriteString(indent + text + "\n")
		return
	}
	line := 0
	b.WriteString(indent)
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if line+1+len(word) > limit {
				b.WriteString("\n" + indent)
				line = 0
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(word)
		line += len(word)
	}
	b.WriteByte('\n')
}

func (t *textWriter) resultLines(res Result) error {
	w := t.w
	who := fmt.Sprintf("%s %s/%s", res.Source, res.Kind, res.Name)
	line := func(prefix string, f policies.Finding) {
		fmt.Fprintf(w, "%s: %s: %s: %s%s (fix: %s)\n", who, f.Rule, f.Field, prefix, f.Message, f.Fix)
	}
	for _, f := range res.Violations {
		line("", f)
	}
	for _, f := range res.Warnings {
		line("warning: ", f)
	}
	for _, f := range res.Audits {
		line("audit: ", f)
	}
	for _, x := range res.Exempted {
		exp := ""
		if x.Expires != "" {
			exp = ", expires " + x.Expires
		}
		fmt.Fprintf(w, "%s: %s: -: exempted: %s%s\n", who, x.Rule, x.Reason, exp)
	}
	return nil
}

func (t *textWriter) skip(s Skipped) {
	if t.verbose || s.misplaced {
		t.skipped = append(t.skipped, safetext.Sanitized(s))
	}
}

func (t *textWriter) finish(sum Summary) error {
	for _, s := range t.skipped {
		what := s.Source
		if s.Kind != "" {
			what += fmt.Sprintf(" %s %s/%s", s.APIVersion, s.Kind, s.Name)
		}
		fmt.Fprintf(t.w, "%s: skipped: %s\n", what, s.Reason)
	}
	parts := []string{fmt.Sprintf("%d %s judged", sum.Judged, safetext.Plural(sum.Judged, "object", "objects")),
		fmt.Sprintf("%d denied (%d %s)", sum.Denied, sum.Violations, safetext.Plural(sum.Violations, "violation", "violations")),
		fmt.Sprintf("%d allowed", sum.Allowed),
		fmt.Sprintf("%d %s", sum.Warnings, safetext.Plural(sum.Warnings, "warning", "warnings"))}
	if sum.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d %s of other kinds skipped", sum.Skipped, safetext.Plural(sum.Skipped, "object", "objects")))
	}
	_, err := fmt.Fprintf(t.w, "podguard: %s\n", strings.Join(parts, ", "))
	if err == nil && sum.Fixable > 0 {
		_, err = fmt.Fprintf(t.w, "podguard: %d of the violations are fixed by podguard's mutation at admission: try --mutate to judge the objects as the cluster admits them\n", sum.Fixable)
	}
	return err
}
