package change

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// JSONPatch renders applied changes as an RFC 6902 JSON patch against the
// object as it was before the changes. Each change becomes one "add"
// operation: at the leaf when its parents exist, or of the whole missing
// subtree at the first absent parent. Changes must have been applied, in
// order, with Apply; that is how their absent parents are known without a
// second decoding of the object.
func JSONPatch(changes []Change) ([]byte, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range changes {
		c := &changes[i]
		if !c.applied {
			return nil, fmt.Errorf("change %s was not applied", c)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		var (
			pointer string
			value   any
		)
		switch {
		case c.missing >= len(c.Path): // append to an existing list
			pointer, value = c.Path.JSONPointer()+"/-", c.Value
		default:
			value = c.Value
			if c.Op == Append {
				value = []any{c.Value}
			}
			for j := len(c.Path) - 1; j > c.missing; j-- {
				value = map[string]any{c.Path[j].Field: value}
			}
			pointer = c.Path[:c.missing+1].JSONPointer()
		}
		raw, err := json.Marshal(value)
		if err != nil {
			return nil, fmt.Errorf("change %s: %w", c, err)
		}
		b.WriteString(`{"op":"add","path":`)
		p, _ := json.Marshal(pointer)
		b.Write(p)
		b.WriteString(`,"value":`)
		b.Write(raw)
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}
