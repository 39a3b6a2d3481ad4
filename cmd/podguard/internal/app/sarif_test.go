package app_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"
)

// sarifSchema is the OASIS SARIF 2.1.0 JSON schema, as the go-sarif module
// embeds it (read from the module's source, not from podguard's code).
func sarifSchema(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/owenrumney/go-sarif/v3").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("module dir: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(m.Dir, "pkg", "report", "v210", "sarif", "schema.go"))
	if err != nil {
		t.Fatal(err)
	}
	found := regexp.MustCompile("(?s)const schema = `(.*)`").FindSubmatch(src)
	if found == nil || !strings.Contains(string(found[1]), "Static Analysis Results Format (SARIF) Version 2.1.0") {
		t.Fatal("no SARIF 2.1.0 schema in the module")
	}
	return string(found[1])
}

// TestValidateSARIF: -o sarif is valid SARIF 2.1.0 (checked against the
// schema), with one result per finding at its file, line and column, the
// levels following the actions, and every rule described with its controls.
func TestValidateSARIF(t *testing.T) {
	dir := t.TempDir()
	file := write(t, dir, "deploy.yaml", `# two objects
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: apps}
spec:
  containers:
  - name: c
    image: registry.example/c:1
    securityContext:
      privileged: true
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx
`)
	r := podguard(t, "", "validate", "-f", file, "-o", "sarif")
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	res, err := gojsonschema.Validate(gojsonschema.NewStringLoader(sarifSchema(t)), gojsonschema.NewStringLoader(r.out))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid() {
		t.Fatalf("not valid SARIF 2.1.0: %v", res.Errors())
	}
	var log struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Name  string
					Rules []struct {
						ID         string
						Properties struct{ Tags []string }
					}
				}
			}
			Results []struct {
				RuleID, Level string
				Message       struct{ Text string }
				Locations     []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine, StartColumn int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.out), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	js := podguard(t, "", "validate", "-f", file, "-o", "json")
	var doc struct {
		Results []struct {
			Violations, Warnings []struct {
				Rule         string
				Line, Column int
			}
		}
	}
	if err := json.Unmarshal([]byte(js.out), &doc); err != nil {
		t.Fatal(err)
	}
	findings := 0
	for _, o := range doc.Results {
		findings += len(o.Violations) + len(o.Warnings)
	}
	if len(run.Results) != findings || findings < 5 {
		t.Errorf("%d SARIF results for %d findings", len(run.Results), findings)
	}
	var priv bool
	for _, res := range run.Results {
		loc := res.Locations[0].PhysicalLocation
		if res.RuleID == "privileged" {
			priv = res.Level == "error" && loc.Region.StartLine == 10 && loc.Region.StartColumn == 7 && loc.ArtifactLocation.URI == file &&
				strings.Contains(res.Message.Text, "Pod apps/bad") && strings.Contains(res.Message.Text, "fix: set spec.containers[0].securityContext.privileged: false")
		}
		if res.RuleID == "imageTag" && (res.Level != "warning" || loc.Region.StartLine != 20) {
			t.Errorf("imageTag result: %+v", res)
		}
	}
	if !priv {
		t.Errorf("no privileged result at line 10, column 7: %+v", run.Results)
	}
	tags := map[string][]string{}
	for _, rule := range run.Tool.Driver.Rules {
		tags[rule.ID] = rule.Properties.Tags
	}
	if !strings.Contains(strings.Join(tags["privileged"], ","), "CIS 5.2.2") || len(tags) < 20 || run.Tool.Driver.Name != "podguard" {
		t.Errorf("rules: %v", tags)
	}
}

// TestSARIFColumnsCountUTF16: SARIF counts columns in UTF-16 code units
// unless a run says otherwise; podguard counted characters, so a column
// after an emoji (two UTF-16 units) was one short. JSON keeps characters.
func TestSARIFColumnsCountUTF16(t *testing.T) {
	dir := t.TempDir()
	file := write(t, dir, "emoji.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: registry.example/c:1\n"+
		"    securityContext: {seLinuxOptions: {level: \"🚀\"}, privileged: true}\n")
	sarif := podguard(t, "", "validate", "-f", file, "-o", "sarif")
	js := podguard(t, "", "validate", "-f", file, "-o", "json")
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string
				Locations []struct {
					PhysicalLocation struct {
						Region struct{ StartLine, StartColumn int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(sarif.out), &log); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []struct {
			Violations []struct {
				Rule         string
				Line, Column int
			}
		}
	}
	if err := json.Unmarshal([]byte(js.out), &doc); err != nil {
		t.Fatal(err)
	}
	line := "    securityContext: {seLinuxOptions: {level: \"🚀\"}, privileged: true}"
	chars := len([]rune(line[:strings.Index(line, "privileged")])) + 1
	units := chars + 1 // the emoji is two UTF-16 code units
	found := false
	for _, v := range doc.Results[0].Violations {
		if v.Rule == "privileged" {
			found = true
			if v.Line != 8 || v.Column != chars {
				t.Errorf("JSON: privileged at %d:%d, want 8:%d (characters)", v.Line, v.Column, chars)
			}
		}
	}
	for _, r := range log.Runs[0].Results {
		if r.RuleID == "privileged" {
			reg := r.Locations[0].PhysicalLocation.Region
			if reg.StartLine != 8 || reg.StartColumn != units {
				t.Errorf("SARIF: privileged at %d:%d, want 8:%d (UTF-16 code units)", reg.StartLine, reg.StartColumn, units)
			}
		}
	}
	if !found {
		t.Fatalf("no privileged finding:\n%s", js.out)
	}
}

// TestSARIFFixes: where mutation knows a finding's fix, the SARIF result
// carries it as a replacement of the object's document; applying one
// replacement to the file makes that rule's finding go away, and a finding
// mutation cannot fix (privileged) carries none.
func TestSARIFFixes(t *testing.T) {
	dir := t.TempDir()
	const manifest = `# a comment kept by the fix
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: registry.example/c:1
    securityContext:
      privileged: true
`
	file := write(t, dir, "pod.yaml", manifest)
	r := podguard(t, "", "validate", "-f", file, "-o", "sarif")
	if v, err := gojsonschema.Validate(gojsonschema.NewStringLoader(sarifSchema(t)), gojsonschema.NewStringLoader(r.out)); err != nil || !v.Valid() {
		t.Fatalf("not valid SARIF 2.1.0: %v %v", err, v.Errors())
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID string
				Fixes  []struct {
					Description     struct{ Text string }
					ArtifactChanges []struct {
						Replacements []struct {
							DeletedRegion   struct{ StartLine, EndLine int }
							InsertedContent struct{ Text string }
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(r.out), &log); err != nil {
		t.Fatal(err)
	}
	fixed := map[string]bool{}
	for _, res := range log.Runs[0].Results {
		if res.RuleID == "privileged" && len(res.Fixes) > 0 {
			t.Errorf("privileged has a fix mutation does not know: %+v", res.Fixes)
		}
		if len(res.Fixes) == 0 || fixed[res.RuleID] {
			continue
		}
		fixed[res.RuleID] = true
		rep := res.Fixes[0].ArtifactChanges[0].Replacements[0]
		lines := strings.Split(strings.TrimSuffix(manifest, "\n"), "\n")
		if rep.DeletedRegion.StartLine != 6 || rep.DeletedRegion.EndLine != len(lines) {
			t.Fatalf("%s: the fix replaces lines %d-%d, want the Pod's document 6-%d", res.RuleID, rep.DeletedRegion.StartLine, rep.DeletedRegion.EndLine, len(lines))
		}
		after := strings.Join(lines[:5], "\n") + "\n" + rep.InsertedContent.Text + "\n"
		if !strings.HasPrefix(after, "# a comment kept by the fix\n") || !strings.Contains(after, "privileged: true") {
			t.Fatalf("%s: the fix changed more than its rule:\n%s", res.RuleID, after)
		}
		again := podguard(t, "", "validate", "-f", write(t, dir, "fixed-"+res.RuleID+".yaml", after), "-o", "json")
		if strings.Contains(again.out, `"rule": "`+res.RuleID+`"`) {
			t.Errorf("%s: still reported after its fix is applied:\n%s", res.RuleID, after)
		}
	}
	// (allowPrivilegeEscalation is not injected beside privileged: true, which the API server would refuse.)
	for _, rule := range []string{"runAsUser", "capabilities", "seccompProfile", "resources"} {
		if !fixed[rule] {
			t.Errorf("no SARIF fix for %s, which mutation fixes", rule)
		}
	}
}
