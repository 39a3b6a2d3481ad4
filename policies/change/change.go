// Package change describes what a mutation injects, as path-addressed
// operations that can be applied to a typed object, rendered as an RFC 6902
// JSON patch for the webhook, or applied to a YAML tree by the CLI. One
// description feeds all three, so the cluster and the CLI inject the same.
package change

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"podguard.dev/podguard/policies/podspec"
)

// Op is the kind of a change.
type Op int

const (
	// Set gives an absent field a value. Fixes only ever set absent fields.
	Set Op = iota
	// Append adds one element at the end of a list, creating the list if absent.
	Append
	// Remove deletes one element of a list (Path ends with its index).
	// Fixes use it only for what the API server itself added, never for
	// what a person wrote: the service account token volume that the
	// ServiceAccount admission plugin mounts before any webhook runs.
	Remove
	// Pin adds a digest to an image reference that names none: the one
	// change to a value a person set, and only this one. Value is the
	// reference as written followed by "@" and the digest; Apply refuses
	// anything else, so the reference people wrote is always kept whole.
	Pin
)

// Change is one injected value.
type Change struct {
	// Rule is the ID of the rule whose fix made the change.
	Rule string
	Op   Op
	// Path addresses the field (Set) or the list (Append) from the object root.
	Path podspec.Path
	// Value is a Go value of the field's (or list element's) API type.
	Value any
	// missing is the index of the first path segment that was absent when the
	// change was applied to the typed object; len(Path) when only the leaf
	// was. A JSON patch adds the whole missing subtree at that point.
	missing int
	applied bool
}

// String renders the change for people: "spec.securityContext.runAsUser: 1000".
func (c Change) String() string {
	v, err := json.Marshal(c.Value)
	val := string(v)
	if err != nil {
		val = fmt.Sprint(c.Value)
	}
	val = strings.Trim(val, `"`)
	switch c.Op {
	case Append:
		return fmt.Sprintf("%s += %s", c.Path, val)
	case Remove:
		return fmt.Sprintf("%s -= (removed)", c.Path)
	case Pin:
		return fmt.Sprintf("%s: %s (pinned)", c.Path, val)
	}
	return fmt.Sprintf("%s: %s", c.Path, val)
}

// Apply performs the change on a typed object (a pointer to an API struct),
// creating absent intermediate structs, pointers, maps and lists, and records
// which part of the path was absent for JSON patch rendering.
func (c *Change) Apply(obj any) error {
	v := reflect.ValueOf(obj)
	// missing is the first i for which Path[:i+1] is absent.
	missing := -1
	for i, seg := range c.Path {
		last := i == len(c.Path)-1
		// Absent pointers were recorded when their field was reached.
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Struct:
			if seg.Field == "" {
				return fmt.Errorf("%s: index into an object", c.Path)
			}
			idx, ok := fieldIndex(v.Type(), seg.Field)
			if !ok {
				return fmt.Errorf("%s: no field %q in %s", c.Path, seg.Field, v.Type())
			}
			f := v.FieldByIndex(idx)
			if missing < 0 && (absent(f) || (last && c.Op == Set)) {
				missing = i
			}
			if !last {
				v = f
				continue
			}
			var err error
			switch c.Op {
			case Set:
				err = assign(f, c.Value)
			case Pin:
				err = pin(f, c.Value)
				missing = len(c.Path) // the field exists: the patch replaces it
			default:
				err = appendTo(f, c.Value)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", c.Path, err)
			}
			c.finish(missing)
			return nil
		case reflect.Slice:
			if seg.Field != "" || seg.Index < 0 || seg.Index >= v.Len() {
				return fmt.Errorf("%s: no list element at segment %d", c.Path, i)
			}
			if last && c.Op == Remove {
				v.Set(reflect.AppendSlice(v.Slice(0, seg.Index), v.Slice(seg.Index+1, v.Len())))
				c.finish(len(c.Path))
				return nil
			}
			if last {
				return fmt.Errorf("%s: a change must end at a field", c.Path)
			}
			v = v.Index(seg.Index)
		case reflect.Map:
			if seg.Field == "" || !last || c.Op != Set {
				return fmt.Errorf("%s: only a map entry can be set in a map", c.Path)
			}
			if v.IsNil() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			key := reflect.ValueOf(seg.Field).Convert(v.Type().Key())
			if v.MapIndex(key).IsValid() {
				return fmt.Errorf("%s: refusing to overwrite a set value", c.Path)
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			if err := assign(elem, c.Value); err != nil {
				return fmt.Errorf("%s: %w", c.Path, err)
			}
			v.SetMapIndex(key, elem)
			if missing < 0 {
				missing = i
			}
			c.finish(missing)
			return nil
		default:
			return fmt.Errorf("%s: cannot walk into %s", c.Path, v.Kind())
		}
	}
	return fmt.Errorf("%s: empty path", c.Path)
}

func (c *Change) finish(missing int) {
	if missing < 0 {
		missing = len(c.Path)
	}
	c.missing, c.applied = missing, true
}

// absent reports whether a field may be missing from the object's JSON: a
// nil pointer, an empty map or list, or an empty struct (omitempty drops
// them). Adding the whole subtree there is right whether the key is missing
// or holds an empty value, so the patch never depends on which.
func absent(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	case reflect.Map, reflect.Slice:
		return v.Len() == 0
	case reflect.Struct:
		return v.IsZero()
	}
	return false
}

func assign(f reflect.Value, value any) error {
	val := reflect.ValueOf(value)
	if f.Kind() == reflect.Pointer {
		if !f.IsNil() {
			return fmt.Errorf("refusing to overwrite a set value")
		}
		if val.Type() != f.Type() {
			p := reflect.New(f.Type().Elem())
			if err := convertInto(p.Elem(), val); err != nil {
				return err
			}
			val = p
		}
		f.Set(val)
		return nil
	}
	if !f.IsZero() {
		return fmt.Errorf("refusing to overwrite a set value")
	}
	return convertInto(f, val)
}

// pin sets a string field holding an image reference without a digest to
// that reference with a digest appended.
func pin(f reflect.Value, value any) error {
	next, ok := value.(string)
	if f.Kind() != reflect.String || !ok {
		return fmt.Errorf("only an image reference can be pinned")
	}
	if err := CheckPin(f.String(), next); err != nil {
		return err
	}
	f.SetString(next)
	return nil
}

// CheckPin reports whether pinned is ref with a digest appended, ref
// naming none: the only edit Pin makes.
func CheckPin(ref, pinned string) error {
	if ref == "" || strings.Contains(ref, "@") {
		return fmt.Errorf("refusing to pin %q: it names a digest already, or nothing", ref)
	}
	digest, ok := strings.CutPrefix(pinned, ref+"@")
	if !ok || !strings.Contains(digest, ":") || strings.ContainsAny(digest, "@/ ") {
		return fmt.Errorf("refusing to change %q into %q: a pin only appends @<digest>", ref, pinned)
	}
	return nil
}

func appendTo(f reflect.Value, value any) error {
	if f.Kind() != reflect.Slice {
		return fmt.Errorf("append to a %s", f.Kind())
	}
	elem := reflect.New(f.Type().Elem()).Elem()
	if err := convertInto(elem, reflect.ValueOf(value)); err != nil {
		return err
	}
	f.Set(reflect.Append(f, elem))
	return nil
}

func convertInto(dst, val reflect.Value) error {
	switch {
	case val.Type().AssignableTo(dst.Type()):
		dst.Set(val)
	case val.Type().ConvertibleTo(dst.Type()) && val.Kind() == dst.Kind():
		dst.Set(val.Convert(dst.Type()))
	default:
		return fmt.Errorf("value of type %s does not fit a field of type %s", val.Type(), dst.Type())
	}
	return nil
}

var fieldCache sync.Map // reflect.Type -> map[string][]int

// fieldIndex finds a struct field by its JSON name, looking through inlined
// (embedded) structs as encoding/json does.
func fieldIndex(t reflect.Type, name string) ([]int, bool) {
	if m, ok := fieldCache.Load(t); ok {
		idx, ok := m.(map[string][]int)[name]
		return idx, ok
	}
	m := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			jname, _, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), prefix...), i)
			if sf.Anonymous && jname == "" && sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, idx)
				continue
			}
			if jname == "-" || !sf.IsExported() {
				continue
			}
			if jname == "" {
				jname = sf.Name
			}
			if _, dup := m[jname]; !dup {
				m[jname] = idx
			}
		}
	}
	walk(t, nil)
	fieldCache.Store(t, m)
	idx, ok := m[name]
	return idx, ok
}
