package change

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// JSONPatch renders applied changes as an RFC 6902 JSON patch against the
// object as it was before the changes. Each change becomes one "add"
// operation: at the leaf when its parents exist, or of the whole missing
// subtree at the first absent parent. Changes must have been applied, in
// order, with Apply; that is how their absent parents are known without a
// second decoding of the object. It writes the JSON itself, since it runs
// on the admission hot path and reflection-based marshalling dominated it.
func JSONPatch(changes []Change) ([]byte, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	b := bytes.NewBuffer(make([]byte, 0, 96*len(changes)))
	b.WriteByte('[')
	for i := range changes {
		c := &changes[i]
		if !c.applied {
			return nil, fmt.Errorf("change %s was not applied", c)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"op":"add","path":`)
		if c.missing >= len(c.Path) { // append to an existing list
			writeString(b, c.Path.JSONPointer()+"/-")
			b.WriteString(`,"value":`)
			if err := writeValue(b, c.Value); err != nil {
				return nil, fmt.Errorf("change %s: %w", c, err)
			}
			b.WriteByte('}')
			continue
		}
		writeString(b, c.Path[:c.missing+1].JSONPointer())
		b.WriteString(`,"value":`)
		// The missing subtree: {"a":{"b":value}} around the value.
		for j := c.missing + 1; j < len(c.Path); j++ {
			b.WriteByte('{')
			writeString(b, c.Path[j].Field)
			b.WriteByte(':')
		}
		if c.Op == Append {
			b.WriteByte('[')
		}
		if err := writeValue(b, c.Value); err != nil {
			return nil, fmt.Errorf("change %s: %w", c, err)
		}
		if c.Op == Append {
			b.WriteByte(']')
		}
		for j := c.missing + 1; j < len(c.Path); j++ {
			b.WriteByte('}')
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

func writeValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		writeString(b, x)
	case corev1.Capability:
		writeString(b, string(x))
	case corev1.PodFSGroupChangePolicy:
		writeString(b, string(x))
	case resource.Quantity:
		writeString(b, x.String())
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(raw)
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			raw, _ := json.Marshal(s)
			b.Write(raw)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
