package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/rules"
)

// decodeStrict decodes a policy's JSON into p field by field, so that every
// problem is reported, each with its full path: an unknown field, a value
// of the wrong type, a value its type refuses (a quantity, an action). The
// standard decoder stops at the first such error and names no field for
// types that decode themselves. Duplicate keys were refused before, when
// the YAML became JSON.
func decodeStrict(data []byte, p *v1alpha1.Policy) field.ErrorList {
	var errs field.ErrorList
	decodeValue(json.RawMessage(data), reflect.ValueOf(p).Elem(), nil, &errs)
	return errs
}

var (
	unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	rulesType       = reflect.TypeOf(v1alpha1.Rules{})
)

func decodeValue(raw json.RawMessage, v reflect.Value, path *field.Path, errs *field.ErrorList) {
	if isNull(raw) {
		return // null leaves the zero value, as encoding/json does
	}
	t := v.Type()
	switch {
	case t == rulesType:
		decodeRules(raw, v, path, errs)
		return
	case reflect.PointerTo(t).Implements(unmarshalerType):
		if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			*errs = append(*errs, field.Invalid(path, field.OmitValueType{}, typeErrorDetail(err)))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := reflect.New(t.Elem())
		decodeValue(raw, elem.Elem(), path, errs)
		v.Set(elem)
	case reflect.Struct:
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			*errs = append(*errs, field.Invalid(path, field.OmitValueType{}, "must be a mapping"))
			return
		}
		index := jsonFields(t)
		for _, key := range orderedKeys(raw) {
			idx, ok := index[key]
			if !ok {
				*errs = append(*errs, unknownField(path.Child(key)))
				continue
			}
			decodeValue(fields[key], v.FieldByIndex(idx), path.Child(key), errs)
		}
	case reflect.Map:
		var entries map[string]json.RawMessage
		if err := json.Unmarshal(raw, &entries); err != nil {
			*errs = append(*errs, field.Invalid(path, field.OmitValueType{}, "must be a mapping"))
			return
		}
		m := reflect.MakeMapWithSize(t, len(entries))
		for _, key := range orderedKeys(raw) {
			elem := reflect.New(t.Elem()).Elem()
			before := len(*errs)
			decodeValue(entries[key], elem, path.Key(key), errs)
			if len(*errs) == before {
				// An entry that did not decode is left out, not zero: a zero
				// would be judged again by validation, as if written.
				m.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), elem)
			}
		}
		v.Set(m)
	case reflect.Slice:
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			*errs = append(*errs, field.Invalid(path, field.OmitValueType{}, "must be a list"))
			return
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			decodeValue(it, s.Index(i), path.Index(i), errs)
		}
		v.Set(s)
	default:
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			*errs = append(*errs, field.Invalid(path, field.OmitValueType{}, typeErrorDetail(err)))
		}
	}
}

// decodeRules decodes each rule's entry: action and mutate, then the rest
// into the rule's own parameter type, as the rule registered it.
func decodeRules(raw json.RawMessage, v reflect.Value, path *field.Path, errs *field.ErrorList) {
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		*errs = append(*errs, field.Invalid(path, field.OmitValueType{}, "must be a mapping of rule IDs"))
		return
	}
	decoded := v1alpha1.Rules{}
	for _, id := range orderedKeys(raw) {
		rp := path.Child(id)
		t, ok := rules.Lookup(id)
		if !ok {
			*errs = append(*errs, unknownField(rp))
			continue
		}
		c := &v1alpha1.RuleConfig{}
		var fields map[string]json.RawMessage
		if isNull(entries[id]) {
			decoded[id] = c
			continue
		}
		if err := json.Unmarshal(entries[id], &fields); err != nil {
			*errs = append(*errs, field.Invalid(rp, field.OmitValueType{}, "must be a mapping"))
			continue
		}
		var paramIndex map[string][]int
		var params reflect.Value
		if t.Params != nil {
			c.Params = t.Params()
			params = reflect.ValueOf(c.Params).Elem()
			paramIndex = jsonFields(params.Type())
		}
		settings := reflect.ValueOf(&c.RuleSettings).Elem()
		settingIndex := jsonFields(settings.Type())
		for _, key := range orderedKeys(entries[id]) {
			if idx, ok := settingIndex[key]; ok {
				decodeValue(fields[key], settings.FieldByIndex(idx), rp.Child(key), errs)
			} else if idx, ok := paramIndex[key]; ok {
				decodeValue(fields[key], params.FieldByIndex(idx), rp.Child(key), errs)
			} else {
				*errs = append(*errs, unknownField(rp.Child(key)))
			}
		}
		decoded[id] = c
	}
	v.Set(reflect.ValueOf(decoded))
}

func unknownField(p *field.Path) *field.Error {
	// The wording of Kubernetes' strict decoding, which people search for.
	return &field.Error{Type: field.ErrorTypeNotSupported, Field: p.String(), BadValue: field.OmitValueType{},
		Detail: fmt.Sprintf("unknown field %q (podguard policy default lists every field)", p.String())}
}

// typeErrorDetail says what kind of value was expected, without echoing
// Go type names people do not write.
func typeErrorDetail(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.String()
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
			want = "an integer"
		case reflect.Bool:
			want = "true or false"
		case reflect.String:
			want = "a string"
		}
		return fmt.Sprintf("must be %s, not a %s", want, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// jsonFields maps a struct's JSON names to field indexes, through inlined
// and embedded structs as encoding/json does.
func jsonFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
			idx := append(append([]int(nil), prefix...), i)
			if sf.Anonymous && (name == "" || strings.Contains(opts, "inline")) && sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, idx)
				continue
			}
			if name == "-" || !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if _, dup := out[name]; !dup {
				out[name] = idx
			}
		}
	}
	walk(t, nil)
	return out
}

// orderedKeys returns an object's keys in the order they appear, so that
// problems are reported in file order.
func orderedKeys(raw json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := tok.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}
