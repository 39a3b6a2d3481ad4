package podspec

import (
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Fields is a set of pod spec fields, by their JSON paths below the pod
// spec: "hostPID", "securityContext.runAsUser", "volumes.hostPath". A path
// names the field and everything below it; list items are reached through
// the list's name ("volumes.hostPath" is every volume's hostPath). The
// prefix "*containers." stands for initContainers, containers and
// ephemeralContainers alike. Rules declare the fields they read (their
// Definition's Reads); the audit's slim copy keeps their union, and a
// test holds each rule to its declaration by judging every fixture on a
// copy holding only those fields.
type Fields []string

// containerLists are the three lists "*containers." stands for.
var containerLists = []string{"initContainers", "containers", "ephemeralContainers"}

// Expand returns the fields with "*containers." spelt out, sorted and
// without duplicates.
func (f Fields) Expand() Fields {
	seen := map[string]bool{}
	for _, p := range f {
		if rest, ok := strings.CutPrefix(p, "*containers."); ok {
			for _, l := range containerLists {
				seen[l+"."+rest] = true
			}
			continue
		}
		seen[p] = true
	}
	out := make(Fields, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Covers reports whether the fields include path (a JSON path below the
// pod spec) or a field above it.
func (f Fields) Covers(path string) bool {
	for _, p := range f.Expand() {
		if p == path || strings.HasPrefix(path, p+".") {
			return true
		}
	}
	return false
}

// fieldTree is Fields as a tree of JSON names; a leaf keeps the whole field.
type fieldTree map[string]fieldTree

func (f Fields) tree() fieldTree {
	root := fieldTree{}
	for _, p := range f.Expand() {
		node := root
		parts := strings.Split(p, ".")
		for i, part := range parts {
			child, ok := node[part]
			if ok && child == nil {
				break // a field above it is kept whole already
			}
			if i == len(parts)-1 {
				node[part] = nil
				break
			}
			if !ok {
				child = fieldTree{}
				node[part] = child
			}
			node = child
		}
	}
	return root
}

// Project returns a copy of spec holding only the fields: what a rule
// that reads only them can see. Slices, maps and pointers of the kept
// fields are shared with spec, not copied.
func (f Fields) Project(spec *corev1.PodSpec) corev1.PodSpec {
	var out corev1.PodSpec
	project(reflect.ValueOf(&out).Elem(), reflect.ValueOf(spec).Elem(), f.tree())
	return out
}

// project sets dst to the parts of src the tree names.
func project(dst, src reflect.Value, tree fieldTree) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		project(p.Elem(), src.Elem(), tree)
		dst.Set(p)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			project(s.Index(i), src.Index(i), tree)
		}
		dst.Set(s)
	case reflect.Struct:
		for i := range src.NumField() {
			sf := src.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			name, inline := jsonName(sf)
			if inline {
				project(dst.Field(i), src.Field(i), tree)
				continue
			}
			sub, ok := tree[name]
			switch {
			case !ok:
			case sub == nil:
				dst.Field(i).Set(src.Field(i))
			default:
				project(dst.Field(i), src.Field(i), sub)
			}
		}
	default:
		// A leaf reached through a partial tree (a map or a scalar named
		// with something below it) is kept whole.
		dst.Set(src)
	}
}

// jsonName returns a struct field's JSON name, and whether it is inlined.
func jsonName(sf reflect.StructField) (string, bool) {
	tag := sf.Tag.Get("json")
	name, opts, _ := strings.Cut(tag, ",")
	if strings.Contains(opts, "inline") || (sf.Anonymous && name == "") {
		return "", true
	}
	if name == "" {
		name = sf.Name
	}
	return name, false
}

// AllFields walks a type's JSON fields, depth first, and returns their
// paths below it: every field of every struct reachable through pointers,
// slices and struct fields (maps and scalars are leaves). Recursive types
// stop at their first repetition.
func AllFields(t reflect.Type) []string {
	var out []string
	var walk func(t reflect.Type, prefix string, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, prefix string, seen map[reflect.Type]bool) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || t.PkgPath() == "k8s.io/apimachinery/pkg/api/resource" || t.PkgPath() == "k8s.io/apimachinery/pkg/util/intstr" {
			return
		}
		seen[t] = true
		defer delete(seen, t)
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, inline := jsonName(sf)
			if inline {
				walk(sf.Type, prefix, seen)
				continue
			}
			p := prefix + name
			out = append(out, p)
			walk(sf.Type, p+".", seen)
		}
	}
	walk(t, "", map[reflect.Type]bool{})
	return out
}
