// Package safetext is podguard's encoder for human-readable text: terminal
// output, CI logs, YAML comments and log fields. Strings from a policy or
// a cluster object (a reason, an image, an env var's name, a file path)
// may hold line breaks, terminal escape sequences or bidirectional
// overrides; written raw, they forge lines in a CI log, recolour or clear
// a terminal, or end a YAML comment and start a document of their own.
// Line keeps such a string on one line and makes every character that is
// not printable visible as an escape, so it cannot leave the place it is
// written in.
package safetext

import (
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line returns s with every character that is not printable text escaped
// Go-style (\n, \t, \x1b, \u202e; \xff for a byte of invalid UTF-8), so
// the result is one line of printable characters. Strings without such
// characters come back unchanged.
func Line(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case printable(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r) // 'x', with the escape inside
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// Comment returns s as the text of one YAML (or shell) comment line,
// "# " + Line(s): a newline inside s can never end the comment.
func Comment(s string) string { return "# " + Line(s) }

// printable is true for characters that are safe to show as they are: not
// control characters (C0, DEL, C1), not format characters (bidirectional
// overrides and isolates, zero-width joiners), not line or paragraph
// separators, not private use or unassigned.
func printable(r rune) bool {
	if r == ' ' {
		return true
	}
	return unicode.IsPrint(r) && !unicode.Is(unicode.Cf, r)
}

// clean reports whether s holds only printable characters.
func clean(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !printable(r) {
			return false
		}
	}
	return true
}

// Sanitized returns a deep copy of v (plain data: structs, pointers,
// slices, arrays, maps, interfaces) in which every string reachable
// through exported fields, map keys included, is Line of the original.
// Renderers for people print a Sanitized copy of what they show, so no
// field of it, present or added later, can reach a terminal raw; v itself
// is left as it was. Unexported fields are copied as they are.
func Sanitized[T any](v T) T {
	in := reflect.ValueOf(&v).Elem()
	out := reflect.New(in.Type()).Elem()
	copySanitized(out, in)
	return out.Interface().(T)
}

// copySanitized sets dst (settable, of src's type) to a sanitized copy of
// src; src is always reached through exported fields, so it can be read.
func copySanitized(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.String:
		dst.Set(reflect.ValueOf(Line(src.String())).Convert(src.Type()))
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copySanitized(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		inner := reflect.New(src.Elem().Type()).Elem()
		copySanitized(inner, src.Elem())
		dst.Set(inner)
	case reflect.Struct:
		dst.Set(src) // unexported fields, as they are
		for i := range src.NumField() {
			if src.Type().Field(i).IsExported() {
				copySanitized(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			copySanitized(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Array:
		for i := range src.Len() {
			copySanitized(dst.Index(i), src.Index(i))
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		iter := src.MapRange()
		for iter.Next() {
			k := reflect.New(iter.Key().Type()).Elem()
			copySanitized(k, iter.Key())
			v := reflect.New(iter.Value().Type()).Elem()
			copySanitized(v, iter.Value())
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}

// Plural returns one for n == 1 and many otherwise: "1 violation", "2
// violations".
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
