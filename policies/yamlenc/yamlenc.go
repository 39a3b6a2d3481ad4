// Package yamlenc writes Go values as YAML for podguard's outputs. It
// marshals like sigs.k8s.io/yaml (through the value's JSON form, so json
// tags and MarshalJSON methods decide the fields) but emits with yaml.v3,
// which escapes every character YAML cannot hold raw: sigs.k8s.io/yaml
// re-reads its own JSON with a YAML reader that refuses control
// characters, so one DEL in an annotation or an exemption's reason made a
// whole report or export fail.
package yamlenc

import (
	"bytes"
	"encoding/json"
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// Marshal returns v as one YAML document, two-space indented with
// sequences not indented (kubectl's layout); long lines are not folded.
func Marshal(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	generic, err = numbers(generic)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	// Sequences at their key's indentation, as kubectl writes them.
	enc.CompactSeqIndent()
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// numbers turns json.Numbers into int64 or float64, which YAML writes as
// numbers (a json.Number is a string to the YAML encoder).
func numbers(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			n, err := numbers(e)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
	case []any:
		for i, e := range t {
			n, err := numbers(e)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		f, err := t.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", t, err)
		}
		return f, nil
	}
	return v, nil
}
