package finding

import "strings"

// FixHere returns the finding's Fix for outputs that print Field just
// before it (kubectl's "field: message" lines, the CLI's text): the
// finding's own path becomes "it", a path that contains it is shortened to
// its last two segments, a path inside it, or beside it in the same list
// item, to the part below what they share, so that no path is printed twice
// in one line. Paths of other fields stay whole. Fix itself stays complete,
// for -o json and the causes' tools.
func (f Finding) FixHere() string {
	if f.Field == "" || !strings.Contains(f.Fix, "spec.") && !strings.Contains(f.Fix, "metadata.") && !strings.Contains(f.Fix, "template.") {
		return f.Fix
	}
	var b strings.Builder
	s := f.Fix
	for len(s) > 0 {
		i := pathStart(s)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		n := 0
		for n < len(s) && isPathByte(s[n]) {
			n++
		}
		// A path never ends with a dot: that one ends the sentence.
		for n > 0 && s[n-1] == '.' {
			n--
		}
		b.WriteString(f.relative(s[:n]))
		s = s[n:]
	}
	out := b.String()
	out = strings.ReplaceAll(out, "set it: ", "set it to ")
	return out
}

// relative writes path p relative to the finding's field.
func (f Finding) relative(p string) string {
	switch {
	case p == f.Field:
		return "it"
	case strings.HasPrefix(f.Field, p+".") || strings.HasPrefix(f.Field, p+"["):
		segs := strings.Split(p, ".")
		if len(segs) > 2 {
			segs = segs[len(segs)-2:]
		}
		return strings.Join(segs, ".")
	case strings.HasPrefix(p, f.Field+"."):
		return p[len(f.Field)+1:]
	}
	// A sibling in the same list item (env[1].valueFrom beside
	// env[1].value): the part below the item. Not a sibling in the pod spec
	// (the pod's securityContext beside a container's): that one stays whole.
	ps, fs := strings.Split(p, "."), strings.Split(f.Field, ".")
	n := 0
	for n < len(ps) && n < len(fs) && ps[n] == fs[n] {
		n++
	}
	if n >= 2 && n < len(ps) && strings.HasSuffix(ps[n-1], "]") {
		return strings.Join(ps[n:], ".")
	}
	return p
}

// pathStart finds the first field path ("spec.", "metadata." or
// "template." at the start of a word) in s, or -1.
func pathStart(s string) int {
	for i := 0; i < len(s); i++ {
		if i > 0 && isPathByte(s[i-1]) {
			continue
		}
		// A PodTemplate's paths start at template.
		if strings.HasPrefix(s[i:], "spec.") || strings.HasPrefix(s[i:], "metadata.") || strings.HasPrefix(s[i:], "template.") {
			return i
		}
	}
	return -1
}

func isPathByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".[]_-/", c) >= 0
}
