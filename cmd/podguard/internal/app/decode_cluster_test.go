package app_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies/manifest"
)

// TestCLIDecodesWhatTheAPIServerKeeps: for manifests with case-variant,
// unknown and YAML 1.1 keys, every field the CLI judges holds the value
// the real API server stores when kubectl applies the file without
// client- or server-side validation (--validate=false, as Helm's and
// Flux's warn mode effectively store). Before, the CLI read "hostpid:
// false" over "hostPID: true" (encoding/json matches keys without case)
// and allowed a pod the API server stored with hostPID: true; and it
// refused "hostPID: yes", which kubectl sends as true. Duplicate keys are
// refused by the CLI (exit 2), never judged as a value the server would
// not keep.
func TestCLIDecodesWhatTheAPIServerKeeps(t *testing.T) {
	env := testenv.StartT(t, nil)
	dir := t.TempDir()
	pod := func(name, spec string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  namespace: default\nspec:\n" + spec
	}
	const c = "  containers:\n  - name: c\n    image: registry.example/c:1\n"
	manifests := map[string]string{
		"case-variant-hostpid":    pod("a", "  hostPID: true\n  hostpid: false\n"+c),
		"case-variant-runasuser":  pod("b", "  securityContext:\n    runAsUser: 0\n    runasuser: 1000\n    RunAsNonRoot: true\n"+c),
		"case-variant-container":  pod("c", c+"    securityContext: {privileged: true, Privileged: false, ALLOWPRIVILEGEESCALATION: false}\n"),
		"yaml-1.1-booleans":       pod("d", "  hostNetwork: yes\n  hostIPC: on\n  automountServiceAccountToken: n\n"+c),
		"octal-mode":              pod("e", c+"  volumes:\n  - name: v\n    configMap: {name: x, defaultMode: 0644}\n"),
		"unknown-fields":          pod("f", "  notAField: true\n  securityContext: {runAsUser: 0, bogus: 1}\n"+c),
		"json-case-variant":       `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"g","namespace":"default"},"spec":{"hostPID":true,"HostPID":false,"containers":[{"name":"c","image":"registry.example/c:1"}]}}`,
		"list-with-case-variants": "apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(pod("h", "  hostPID: true\n  hostpid: false\n"+c), "\n", "\n  ") + "\n",
	}
	for name, content := range manifests {
		t.Run(name, func(t *testing.T) {
			file := write(t, dir, name+".yaml", content)
			out, err := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "create", "--dry-run=server", "--validate=false", "-o", "json", "-f", file).Output()
			if err != nil {
				t.Fatalf("kubectl create: %v", err)
			}
			var stored map[string]any
			if err := json.Unmarshal(out, &stored); err != nil {
				t.Fatal(err)
			}
			if stored["kind"] == "List" {
				stored = stored["items"].([]any)[0].(map[string]any)
			}
			docs, err := manifest.Split(file, []byte(content))
			if err != nil || len(docs) != 1 {
				t.Fatalf("split: %v, %d documents", err, len(docs))
			}
			objs, err := docs[0].Objects()
			if err != nil || len(objs) != 1 || objs[0].Typed == nil {
				t.Fatalf("the CLI refuses it: %v", err)
			}
			js, _ := json.Marshal(objs[0].Typed)
			var judged map[string]any
			_ = json.Unmarshal(js, &judged)
			delete(judged["metadata"].(map[string]any), "creationTimestamp")
			for _, d := range subsetDiff("", judged["spec"], stored["spec"]) {
				t.Errorf("spec%s", d)
			}
		})
	}
	// Duplicate keys: the CLI refuses the file.
	dup := write(t, dir, "dup.yaml", pod("z", "  hostPID: false\n  hostPID: true\n"+c))
	if r := podguard(t, "", "validate", "-f", dup); r.code != 2 || !strings.Contains(r.err, "already defined") {
		t.Errorf("duplicate keys: exit %d\n%s", r.code, r.err)
	}
}

// subsetDiff lists where want (what the CLI judged) holds a value got
// (what the API server stored) does not.
func subsetDiff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: the CLI read %v, the API server stored %v", path, want, got)}
		}
		var out []string
		for k, v := range w {
			out = append(out, subsetDiff(path+"."+k, v, g[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: the CLI read %v, the API server stored %v", path, want, got)}
		}
		var out []string
		for i := range w {
			out = append(out, subsetDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s: the CLI read %v, the API server stored %v", path, want, got)}
	}
	return nil
}
