package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// kubectlDocuments reads data as kubectl apply -f reads a file (its
// resource builder's StreamVisitor): YAMLOrJSONDecoder into raw JSON, empty
// and null documents passed over. err is set when kubectl would stop.
func kubectlDocuments(data []byte) (docs []any, err error) {
	d := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		ext := runtime.RawExtension{}
		if err := d.Decode(&ext); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return docs, err
		}
		raw := bytes.TrimSpace(ext.Raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue
		}
		v, err := generic(raw)
		if err != nil {
			return docs, err
		}
		if _, ok := v.(map[string]any); !ok {
			// kubectl fails on a document that is not an object.
			return docs, errors.New("not an object")
		}
		docs = append(docs, v)
	}
}

// podguardDocuments reads data as the CLI does, up to its first error.
func podguardDocuments(data []byte) (docs []any, err error) {
	s, err := NewSplitter("fuzz", data)
	if err != nil {
		return nil, err
	}
	for {
		d, ok := s.Next()
		if !ok {
			return docs, nil
		}
		if d.Err != nil {
			return docs, d.Err
		}
		js, err := d.objectJSON(-1)
		if err != nil {
			return docs, err
		}
		v, err := generic(js)
		if err != nil {
			return docs, err
		}
		if v == nil {
			continue
		}
		docs = append(docs, v)
	}
}

func same(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func generic(js []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// FuzzSplitLikeKubectl holds the CLI's reading of an input to kubectl's:
// every document kubectl would apply, podguard judges, cut at the same
// place and with the same content (as the JSON kubectl sends), or
// podguard stops with an error (exit 2) before it. Before, "---#" cut a
// document for kubectl but not for podguard, which then saw 0 objects
// where kubectl created a privileged Pod; hostPID: yes was a string to
// podguard and true to kubectl.
func FuzzSplitLikeKubectl(f *testing.F) {
	files, _ := filepath.Glob("../rules/testdata/*/*/*.yaml")
	corpus, _ := filepath.Glob("../../cmd/podguard/internal/app/testdata/corpus/*")
	files = append(append(files, corpus...), "testdata/list.yaml", "testdata/multi.yaml", "testdata/object.json")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil && len(data) < 8<<10 {
			f.Add(data)
		}
	}
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {hostPID: true}\n"
	for _, sep := range []string{"---", "---#", "--- # c", "---\t", "---\r", "--- {a: 1}", "----", "---a", "...", "... #", " ---", "---  "} {
		f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n" + sep + "\n" + pod))
	}
	for _, s := range []string{
		"hostPID: yes\non: y\noff: n\nmode: 0644\nbig: 1e3\n",
		"{\"kind\":\"Pod\"}\n{\"kind\":\"Pod\"}\n",
		"{\"kind\":\"Pod\"}\n---\n" + pod,
		"{a: 1}\n---\n" + pod,
		"{\"kind\":\"Pod\"} {\"kind\":\"Pod\"} kind: x\n",
		"a: 1\r\n---\r\nb: 2\r\n",
		"---\n---\n\n---\n" + pod,
		"# only a comment\n---\n~\n---\nnull\n",
		"a: |\n  ---\n  x\n---\nb: 2\n",
		"a: \"x\n---\ny\"\n",
		"kind: Pod\nkind: Pod\n",
		"- a\n- b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, kerr := kubectlDocuments(data)
		p, perr := podguardDocuments(data)
		if perr != nil {
			// podguard refuses the input (exit 2) no later than kubectl
			// goes wrong: what it read until then is what kubectl reads.
			if len(p) > len(k) || !same(p, k[:len(p)]) {
				t.Fatalf("before its error (%v) podguard read\n%v\nkubectl reads\n%v (err %v)", perr, p, k, kerr)
			}
			return
		}
		if kerr != nil {
			// kubectl stops; podguard judged more, which is safe, but
			// everything kubectl read must be read alike.
			if len(p) < len(k) || !same(p[:len(k)], k) {
				t.Fatalf("podguard read\n%v\nkubectl reads (then fails: %v)\n%v", p, kerr, k)
			}
			return
		}
		if !same(p, k) {
			t.Fatalf("podguard read\n%#v\nkubectl reads\n%#v", p, k)
		}
	})
}
