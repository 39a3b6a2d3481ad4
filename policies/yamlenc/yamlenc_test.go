package yamlenc

import (
	"reflect"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

func TestMarshalReadsBackAsSigsYAML(t *testing.T) {
	type inner struct {
		Text  string   `json:"text"`
		Count int      `json:"count"`
		Ratio float64  `json:"ratio"`
		List  []string `json:"list,omitempty"`
		Empty *string  `json:"empty"`
	}
	in := map[string]any{
		"hostile": "x\x7fy\u202e\u2028\x1b\n---\napiVersion: v1\n# a",
		"inner":   inner{Text: "yes", Count: 3, Ratio: 0.5, List: []string{"on", "1", "true", "~"}},
		"big":     int64(1) << 60,
	}
	out, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	// kube-apiserver and kubectl read YAML with sigs.k8s.io/yaml: it must
	// read back the same values, strings that look like booleans included.
	var got, want map[string]any
	if err := sigsyaml.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	js, _ := sigsyaml.Marshal(map[string]any{"inner": in["inner"], "big": in["big"]})
	if err := sigsyaml.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	want["hostile"] = in["hostile"]
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back\n%#v\nwant\n%#v\nfrom\n%s", got, want, out)
	}
}
