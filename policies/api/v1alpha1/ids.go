package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// IDRange is one entry of an allowed UID or GID list: a single ID, written
// as a number (1000), or an inclusive range, written {min: 10000, max:
// 65535}.
type IDRange struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// ID returns the range of one ID.
func ID(id int64) IDRange { return IDRange{Min: id, Max: id} }

// Contains reports whether id is in the range.
func (r IDRange) Contains(id int64) bool { return id >= r.Min && id <= r.Max }

// String writes the range for people: "1000" or "10000-65535".
func (r IDRange) String() string {
	if r.Min == r.Max {
		return strconv.FormatInt(r.Min, 10)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// MarshalJSON writes a single ID as a number, a range as {min, max}.
func (r IDRange) MarshalJSON() ([]byte, error) {
	if r.Min == r.Max {
		return []byte(strconv.FormatInt(r.Min, 10)), nil
	}
	type plain IDRange
	return json.Marshal(plain(r))
}

// UnmarshalJSON reads a number or a {min, max} mapping, strictly: both
// keys required, nothing else.
func (r *IDRange) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '{' {
		var id int64
		if err := json.Unmarshal(b, &id); err != nil {
			return fmt.Errorf("an ID is an integer (1000) or a range ({min: 10000, max: 65535}), not %s", b)
		}
		*r = ID(id)
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var out IDRange
	for k, v := range raw {
		var dst *int64
		switch k {
		case "min":
			dst = &out.Min
		case "max":
			dst = &out.Max
		default:
			return fmt.Errorf("unknown field %q in an ID range: use min and max", k)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%s of an ID range must be an integer, not %s", k, v)
		}
	}
	if _, ok := raw["min"]; !ok {
		return fmt.Errorf("an ID range needs min and max")
	}
	if _, ok := raw["max"]; !ok {
		return fmt.Errorf("an ID range needs min and max")
	}
	*r = out
	return nil
}
