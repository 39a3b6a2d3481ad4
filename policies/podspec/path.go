package podspec

import (
	"strconv"
	"strings"
)

// Segment is one step of a Path: a field name, or a list index when Field is empty.
type Segment struct {
	Field string
	Index int
}

// Path addresses a value inside an object from the object's root, in the
// JSON field names of the Kubernetes API. Unlike field.Path its segments can
// be walked, which the change appliers (typed, YAML and JSON patch) need.
type Path []Segment

// NewPath returns a path of field names.
func NewPath(fields ...string) Path {
	return Path(nil).Child(fields...)
}

// Child returns a new path extended by the given field names. The receiver is
// never modified, so paths can be shared freely.
func (p Path) Child(fields ...string) Path {
	out := make(Path, len(p), len(p)+len(fields))
	copy(out, p)
	for _, f := range fields {
		out = append(out, Segment{Field: f})
	}
	return out
}

// Index returns a new path extended by a list index.
func (p Path) Index(i int) Path {
	out := make(Path, len(p), len(p)+1)
	copy(out, p)
	return append(out, Segment{Index: i})
}

// String renders the path as Kubernetes prints field paths:
// spec.containers[0].securityContext.
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p {
		if s.Field == "" {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.Index))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.Field)
	}
	return b.String()
}

// JSONPointer renders the path as an RFC 6901 JSON pointer, as JSON patches use.
func (p Path) JSONPointer() string {
	var b strings.Builder
	for _, s := range p {
		b.WriteByte('/')
		if s.Field == "" {
			b.WriteString(strconv.Itoa(s.Index))
			continue
		}
		if strings.ContainsAny(s.Field, "~/") {
			b.WriteString(pointerEscaper.Replace(s.Field))
		} else {
			b.WriteString(s.Field)
		}
	}
	return b.String()
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
