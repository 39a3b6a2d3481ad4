package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"podguard.dev/podguard/policies/api/load"
)

// hostile holds every kind of character that can leave the place it is
// printed in: a newline and a YAML document marker (a document of its
// own, as the export injection did with a ClusterRoleBinding), a
// carriage return, terminal escapes (colour, clear screen, OSC title), a
// bidirectional override, the Unicode line separator and DEL.
const hostile = "x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwned}\n# \r\x1b[31mred\x1b[2J\x1b]0;title\x07\u202egnp\u2028\x7f"

// hostileRegexp is hostile without the brackets a regular expression
// would refuse, for the secretsInEnv name patterns.
const hostileRegexp = "x\n---\nkind: ClusterRoleBinding\n# \r\x1b\x07\u202e\u2028\x7f"

// hostilePolicy puts hostile in every free-text field of a policy.
func hostilePolicy() string {
	q := strconv.QuoteToASCII // escapes YAML's double-quoted style reads the same way
	return `apiVersion: podguard.dev/v1alpha1
kind: Policy
rules:
  secretsInEnv:
    namePatterns: [` + q(hostileRegexp) + `]
exemptions:
- reason: ` + q(hostile) + `
  namespaces: [` + q(hostile) + `, ` + q("team-*"+hostile) + `]
  users: [` + q(hostile) + `]
  groups: [` + q(hostile) + `]
  images: [` + q(hostile) + `, ` + q("reg/*"+hostile) + `]
  containerNames: [` + q(hostile) + `]
  rules: [privileged]
- reason: ` + q(hostile) + `
  namespaces: [` + q(hostile) + `]
  expires: "2999-01-01"
- reason: ` + q(hostile) + `
  namespaces: [` + q(hostile) + `]
  expires: "2001-01-01"
`
}

// hostileManifest puts hostile in every free-text field of a Pod that
// podguard reads or prints: names, namespace, images, env names, capability
// names, annotations.
func hostileManifest() string {
	q := strconv.QuoteToASCII
	return `apiVersion: v1
kind: Pod
metadata:
  name: ` + q(hostile) + `
  namespace: ` + q(hostile+"-apps") + `
  annotations:
    container.apparmor.security.beta.kubernetes.io/c: unconfined
    ` + q(hostile) + `: ` + q(hostile) + `
spec:
  containers:
  - name: ` + q(hostile) + `
    image: ` + q(hostile) + `
    env:
    - name: ` + q(hostile+"_PASSWORD") + `
      value: ` + q(hostile) + `
    securityContext:
      privileged: true
      capabilities: {add: [` + q(hostile) + `]}
`
}

// noControls fails when out holds a character that is not printable
// text, other than the newlines between lines.
func noControls(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		if r == '\n' || r == ' ' {
			continue
		}
		if !unicode.IsPrint(r) || unicode.Is(unicode.Cf, r) {
			t.Errorf("%s: character %U at byte %d reaches the output raw:\n%s", what, r, i, out)
			return
		}
	}
}

// yamlDocuments cuts a stream as kubectl does and decodes each document.
func yamlDocuments(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []map[string]any
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading the stream as kubectl does: %v", err)
		}
		var m map[string]any
		if err := sigsyaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("document %d: %v", len(out), err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

// TestHostileStringsStayInTheirPlace renders every output of the CLI with
// hostile strings in every free-text field of the policy and of the
// objects, and reads each result back: the YAML and JSON outputs hold the
// same objects, one document each, and human-readable outputs hold no
// control character. Before, an exemption's reason with a newline and
// "---" became a ClusterRoleBinding document of its own in the export.
func TestHostileStringsStayInTheirPlace(t *testing.T) {
	dir := t.TempDir()
	policy := write(t, dir, "policy.yaml", hostilePolicy())
	manifest := write(t, dir, "pod.yaml", hostileManifest())

	check := podguard(t, "", "policy", "check", "-f", policy)
	if check.code != 0 {
		t.Fatalf("policy check: exit %d\n%s", check.code, check.err)
	}
	noControls(t, "policy check", check.out+check.err)

	// The export, as YAML and as JSON: the same objects, and no object
	// that podguard did not build.
	y := podguard(t, "", "export", "--policy", policy)
	j := podguard(t, "", "export", "--policy", policy, "-o", "json")
	if y.code != 0 || j.code != 0 {
		t.Fatalf("export: exit %d %d\n%s", y.code, j.code, y.err)
	}
	noControls(t, "export's notes", y.err)
	docs := yamlDocuments(t, []byte(y.out))
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal([]byte(j.out), &list); err != nil {
		t.Fatal(err)
	}
	if len(docs) != len(list.Items) {
		t.Fatalf("the YAML export holds %d documents, the JSON export %d objects", len(docs), len(list.Items))
	}
	for i, d := range docs {
		if d["kind"] == "ClusterRoleBinding" || !strings.HasPrefix(d["apiVersion"].(string), "admissionregistration.k8s.io/") {
			t.Errorf("document %d is a %v %v: not an object podguard exports", i, d["apiVersion"], d["kind"])
		}
		want, _ := json.Marshal(list.Items[i])
		var norm map[string]any
		_ = json.Unmarshal(want, &norm)
		got, _ := json.Marshal(d)
		var gotNorm map[string]any
		_ = json.Unmarshal(got, &gotNorm)
		if !reflect.DeepEqual(gotNorm, norm) {
			t.Errorf("document %d differs between the YAML and the JSON export", i)
		}
	}
	if !strings.Contains(y.out, `\n---\napiVersion: rbac`) {
		t.Errorf("the export's note should show the reason escaped on one line")
	}

	// The static manifest directory, its path hostile too.
	static := filepath.Join(dir, "static"+hostile)
	s := podguard(t, "", "export", "--policy", policy, "--static-manifests", static)
	if s.code != 0 {
		t.Fatalf("static export: exit %d\n%s", s.code, s.err)
	}
	noControls(t, "static export's notes", s.err)
	err := filepath.WalkDir(static, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		docs := yamlDocuments(t, data)
		for _, doc := range docs {
			if doc["kind"] == "ClusterRoleBinding" {
				t.Errorf("%s holds a ClusterRoleBinding", p)
			}
		}
		if filepath.Base(p) == "admission-config.yaml" {
			if len(docs) != 1 || docs[0]["kind"] != "AdmissionConfiguration" {
				t.Errorf("admission-config.yaml: %d documents", len(docs))
			}
			plugins := docs[0]["plugins"].([]any)
			dir := plugins[0].(map[string]any)["configuration"].(map[string]any)["staticManifestsDir"]
			if dir != filepath.Join(static, "validating-policies") {
				t.Errorf("staticManifestsDir reads back as %q", dir)
			}
		} else if len(docs) != 2 {
			t.Errorf("%s: %d documents, want a policy and its binding", p, len(docs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The judged manifest, in every output format.
	for _, o := range []string{"text", "lines"} {
		r := podguard(t, "", "validate", "--policy", policy, "-f", manifest, "-o", o, "-v")
		if r.code != 1 {
			t.Errorf("validate -o %s: exit %d\n%s", o, r.code, r.err)
		}
		noControls(t, "validate -o "+o, r.out+r.err)
	}
	r := podguard(t, "", "validate", "--policy", policy, "-f", manifest, "-o", "json")
	var res struct {
		Results []struct {
			Name, Namespace string
			Violations      []struct{ Field, Message string }
		}
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || len(res.Results) != 1 || res.Results[0].Name != hostile || res.Results[0].Namespace != hostile+"-apps" {
		t.Errorf("validate -o json does not read back: %v %+v", err, res)
	}
	sarif := podguard(t, "", "validate", "--policy", policy, "-f", manifest, "-o", "sarif")
	var log map[string]any
	if err := json.Unmarshal([]byte(sarif.out), &log); err != nil {
		t.Errorf("validate -o sarif does not parse: %v", err)
	}

	// mutate: the changed manifest reads back as one Pod with the same names.
	m := podguard(t, "", "mutate", "-f", manifest)
	docs = yamlDocuments(t, []byte(m.out))
	if m.code != 0 || len(docs) != 1 || docs[0]["metadata"].(map[string]any)["name"] != hostile {
		t.Errorf("mutate output does not read back as the one Pod: exit %d, %d documents\n%s", m.code, len(docs), m.err)
	}
	noControls(t, "mutate's notes", m.err)

	// A baseline merged into the hostile policy is still that policy plus
	// the new exemptions: same reasons, nothing added.
	p, err := load.Bytes([]byte(hostilePolicy()), "policy.yaml", "podguard")
	if err != nil {
		t.Fatal(err)
	}
	if p.Exemptions[0].Reason != hostile || p.Exemptions[0].Images[1] != "reg/*"+hostile {
		t.Fatalf("the policy does not read back: %q", p.Exemptions[0].Reason)
	}

	// podguard's own namespace is a name, never YAML text.
	if r := podguard(t, "", "policy", "default", "--namespace", hostile); r.code != 2 || !strings.Contains(r.err, "not a namespace name") {
		t.Errorf("policy default --namespace with a hostile name: exit %d\n%s", r.code, r.out)
	}
	noControls(t, "policy default's error", podguard(t, "", "policy", "default", "--namespace", hostile).err)
}
