package manifest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/manifest"
)

// FuzzManifest: any input either fails cleanly or reads; every supported
// object mutates, the YAML edit renders, and the rendered document reads
// back as the mutated object.
func FuzzManifest(f *testing.F) {
	files, _ := filepath.Glob("../rules/testdata/*/*/*.yaml")
	files = append(files, "testdata/list.yaml", "testdata/multi.yaml", "testdata/object.json")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("---\n- a\n---\nkind: Pod\n"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    securityContext:\n"))
	e, err := policies.New(load.Default(""))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := manifest.Split("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, d := range docs {
			objs, err := d.Objects()
			if err != nil {
				if err.Error() == "" {
					t.Error("empty error message")
				}
				continue
			}
			var mutated []any
			for _, o := range objs {
				if !o.Supported() {
					continue
				}
				changes, err := e.Mutate(o.Typed, policies.Attributes{})
				if err != nil {
					t.Fatalf("mutate: %v", err)
				}
				if err := o.Apply(changes); err != nil {
					// A YAML alias in the way is refused, not mangled.
					continue
				}
				mutated = append(mutated, o.Typed)
			}
			out, err := d.Render()
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if !d.Changed() {
				if string(out) != string(d.Raw) {
					t.Error("an unchanged document must come out byte-identical")
				}
				continue
			}
			again, err := manifest.Split("fuzz.yaml", out)
			if err != nil || len(again) != 1 {
				t.Fatalf("rendered document does not split back: %v\n%s", err, out)
			}
			objs2, err := again[0].Objects()
			if err != nil {
				t.Fatalf("rendered document does not read back: %v\n%s", err, out)
			}
			i := 0
			for _, o := range objs2 {
				if !o.Supported() {
					continue
				}
				if i >= len(mutated) {
					t.Fatalf("more objects after rendering\n%s", out)
				}
				a, _ := json.Marshal(o.Typed)
				b, _ := json.Marshal(mutated[i])
				if string(a) != string(b) {
					t.Errorf("rendered object differs from the mutated one\n rendered %s\n mutated  %s", a, b)
				}
				i++
			}
		}
	})
}
