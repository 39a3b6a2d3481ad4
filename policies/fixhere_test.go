package policies_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/manifest"
)

func TestFixHere(t *testing.T) {
	for _, c := range []struct{ field, fix, want string }{
		{"spec.containers[0].image", "set spec.containers[0].image to a fixed tag or a digest (image@sha256:...)", "set it to a fixed tag or a digest (image@sha256:...)"},
		{"spec.securityContext.runAsUser", "set spec.securityContext.runAsUser: 1000", "set it to 1000"},
		{"spec.containers[0].securityContext.capabilities.add[1]", "remove SYS_PTRACE from spec.containers[0].securityContext.capabilities.add, or exempt this container",
			"remove SYS_PTRACE from capabilities.add, or exempt this container"},
		{"spec.containers[0].securityContext.runAsUser", "set spec.containers[0].securityContext.runAsUser: 1000, or remove it to inherit spec.securityContext.runAsUser.",
			"set it to 1000, or remove it to inherit spec.securityContext.runAsUser."},
		{"spec.containers[0].securityContext.seLinuxOptions", "remove spec.containers[0].securityContext.seLinuxOptions.type", "remove type"},
		{"spec.hostPID", "remove hostPID", "remove hostPID"},
		{"template.spec.containers[0].livenessProbe", "set template.spec.containers[0].livenessProbe (httpGet)", "set it (httpGet)"},
		{"spec.containers[0].env[1].value", "set spec.containers[0].env[1].valueFrom.secretKeyRef instead of value", "set valueFrom.secretKeyRef instead of value"},
		{"spec.template.spec.containers[0].securityContext.runAsGroup", "set spec.template.spec.securityContext.runAsGroup: 1000",
			"set spec.template.spec.securityContext.runAsGroup: 1000"},
	} {
		if got := (policies.Finding{Field: c.field, Fix: c.fix}).FixHere(); got != c.want {
			t.Errorf("FixHere(%q, %q) = %q, want %q", c.field, c.fix, got, c.want)
		}
	}
}

// TestFixHereNeverRepeatsTheField: for every finding of every rule's fail
// fixtures, the fix as kubectl and the CLI's text print it after the field
// does not print the field again.
func TestFixHereNeverRepeatsTheField(t *testing.T) {
	e := enforcer(t, header)
	paths, err := filepath.Glob("rules/testdata/*/fail/*.yaml")
	if err != nil || len(paths) < 20 {
		t.Fatalf("fixtures: %v %v", paths, err)
	}
	n := 0
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := manifest.Split(path, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			objs, err := d.Objects()
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if !o.Supported() {
					continue
				}
				res, err := e.Validate(o.Typed, policies.Attributes{Namespace: "apps"})
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range append(append(res.Violations, res.Warnings...), res.Audits...) {
					n++
					if got := f.FixHere(); strings.Contains(got, f.Field) {
						t.Errorf("%s: %s: fix %q repeats the field", path, f.Field, got)
					}
				}
			}
		}
	}
	if n < 40 {
		t.Errorf("only %d findings in the fixtures", n)
	}
}
