package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func TestDenialReadsInKubectl(t *testing.T) {
	vs := []policies.Finding{
		{Rule: "privileged", Field: "spec.containers[0].securityContext.privileged", Message: `container "c" is privileged`, Fix: "set spec.containers[0].securityContext.privileged: false"},
		{Rule: "hostNamespaces", Field: "spec.hostPID", Message: "the pod shares the host's PID namespace", Fix: "remove spec.hostPID"},
	}
	st := invalid(schema.GroupKind{Kind: "Pod"}, "p", vs, 0, nil, 0, "")
	err := &apierrors.StatusError{ErrStatus: *st}
	if !apierrors.IsInvalid(err) || st.Details.Kind != "Pod" || st.Details.Name != "p" || len(st.Details.Causes) != 2 {
		t.Fatalf("status %+v", st)
	}
	want := []string{
		`Pod "p" is invalid: 2 violations of the podguard policy:`,
		`- spec.containers[0].securityContext.privileged: container "c" is privileged; fix: set it to false (podguard rule privileged)`,
		`- spec.hostPID: the pod shares the host's PID namespace; fix: remove it (podguard rule hostNamespaces)`,
	}
	if got := strings.Split(st.Message, "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("message\n%s\nwant\n%s", st.Message, strings.Join(want, "\n"))
	}
	for i, c := range st.Details.Causes {
		if c.Type != "FieldValueInvalid" || c.Field != vs[i].Field || strings.Contains(c.Message, c.Field) ||
			strings.Contains(c.Message, "Invalid value") || !strings.HasSuffix(c.Message, "(podguard rule "+vs[i].Rule+")") {
			t.Errorf("cause %+v", c)
		}
	}
}

func TestDenialCountsWhatItDoesNotList(t *testing.T) {
	var vs []policies.Finding
	for i := 0; i < maxCauses+3; i++ {
		vs = append(vs, policies.Finding{Rule: "privileged", Field: fmt.Sprintf("spec.containers[%d].securityContext.privileged", i), Message: "m", Fix: "f"})
	}
	st := invalid(schema.GroupKind{Kind: "Pod"}, "p", vs, 2, nil, 0, "")
	last := st.Details.Causes[len(st.Details.Causes)-1]
	if len(st.Details.Causes) != maxCauses+1 || last.Field != "<more>" || !strings.HasPrefix(last.Message, "5 more violations; run podguard validate") ||
		!strings.HasPrefix(st.Message, `Pod "p" is invalid: 55 violations of the podguard policy:`) {
		t.Errorf("%d causes, last %+v, message starts %q", len(st.Details.Causes), last, st.Message[:80])
	}
}

// tmplChanges is what mutation injects into a Deployment's pod template.
func tmplChanges() []change.Change {
	c := podspec.NewPath("spec", "template", "spec", "containers").Index(0)
	sc := podspec.NewPath("spec", "template", "spec", "securityContext")
	return []change.Change{
		{Rule: "runAsUser", Op: change.Set, Path: sc.Child("runAsUser"), Value: int64(1000)},
		{Rule: "runAsNonRoot", Op: change.Set, Path: sc.Child("runAsNonRoot"), Value: true},
		{Rule: "seccompProfile", Op: change.Set, Path: sc.Child("seccompProfile"), Value: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		{Rule: "capabilities", Op: change.Append, Path: c.Child("securityContext", "capabilities", "drop"), Value: corev1.Capability("ALL")},
		{Rule: "capabilities", Op: change.Append, Path: podspec.NewPath("spec", "template", "spec", "containers").Index(1).Child("securityContext", "capabilities", "drop"), Value: corev1.Capability("ALL")},
		{Rule: "resources", Op: change.Set, Path: c.Child("resources", "limits", "cpu"), Value: "500m"},
		{Rule: "readOnlyRootFilesystem", Op: change.Append, Path: podspec.NewPath("spec", "template", "spec", "volumes"), Value: corev1.Volume{Name: "tmp"}},
		{Rule: "serviceAccountToken", Op: change.Remove, Path: podspec.NewPath("spec", "template", "spec", "volumes").Index(0)},
	}
}

func TestWarningsGroupWhatMutationInjects(t *testing.T) {
	var fs []policies.Finding
	for _, c := range tmplChanges() {
		fs = append(fs, policies.Finding{Rule: c.Rule, Field: c.Path.String(), Message: "missing", Fix: "set it", Injected: true})
	}
	fs = append(fs, policies.Finding{Rule: "imageTag", Field: "spec.template.spec.containers[0].image", Message: `container "c" image "nginx" has no tag`,
		Fix: "set spec.template.spec.containers[0].image to a fixed tag or a digest"})
	ws := warnings(fs, tmplChanges(), 0, "")
	want := []string{
		"podguard: not in the pod template, its pods receive at admission: runAsUser=1000, runAsNonRoot=true, seccompProfile.type=RuntimeDefault, " +
			"capabilities.drop+=ALL, limits.cpu=500m, volumes+=tmp; set them in the template to silence this",
		`podguard: spec.template.spec.containers[0].image: container "c" image "nginx" has no tag; fix: set it to a fixed tag or a digest (podguard rule imageTag)`,
	}
	if strings.Join(ws, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(ws, "\n"), strings.Join(want, "\n"))
	}
}

func TestWarningsAreBounded(t *testing.T) {
	var fs []policies.Finding
	for i := 0; i < maxWarnings+5; i++ {
		fs = append(fs, policies.Finding{Rule: "probes", Field: fmt.Sprintf("spec.containers[%d].livenessProbe", i), Message: strings.Repeat("a long message ", 30), Fix: "set it"})
	}
	ws := warnings(fs, nil, 3, "")
	if len(ws) != maxWarnings+1 || ws[maxWarnings] != "podguard: 8 more warnings; run podguard validate on the manifest for the full list" {
		t.Fatalf("%d warnings, last %q", len(ws), ws[len(ws)-1])
	}
	total := 0
	for _, w := range ws {
		total += len(w)
		if len(w) > maxWarningLength || strings.Contains(w, "a lo…") || strings.Contains(w, "messa…") {
			t.Errorf("%d bytes or cut mid-word: %q", len(w), w)
		}
	}
	if total > 4096 {
		t.Errorf("warnings total %d bytes, over the API server's 4096", total)
	}
}

func TestTruncateEndsAtAWord(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"one two three four", 12, "one two…"},
		{"one two three four", 13, "one two…"},
		{"one two three four", 14, "one two…"},
		{"one two three four", 16, "one two three…"},
		{"abcdefghijklmnop", 10, "abcdefg…"},
		{"short", 10, "short"},
	} {
		if got := truncate(c.in, c.max); got != c.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

// TestDenialSizeIsBounded: the largest denial (maxCauses violations whose
// message and fix are at maxFindingText, on long fields, a count of the
// rest, and maxWarnings warnings as long and their count) stays under the
// bound RELIABILITY.md states.
func TestDenialSizeIsBounded(t *testing.T) {
	var vs []policies.Finding
	for i := 0; i < maxCauses+10; i++ {
		vs = append(vs, policies.Finding{Rule: "secretsInEnv", Field: fmt.Sprintf("spec.jobTemplate.spec.template.spec.initContainers[%d].env[999].value", i),
			Message: strings.Repeat("word ", 100), Fix: strings.Repeat("fix ", 100)})
	}
	raw, err := json.Marshal(invalid(schema.GroupKind{Group: "batch", Kind: "CronJob"}, strings.Repeat("n", 253), vs, 1000, vs, 1000, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 96<<10 {
		t.Errorf("largest denial: %d bytes", len(raw))
	}
	t.Logf("largest denial: %d bytes", len(raw))
}

// TestDenialPutsWarningsAfterCauses: kubectl prints Warning headers before
// an error, so a denied object's warnings travel as causes after its
// violations, marked as warnings, and the response carries no headers.
func TestDenialPutsWarningsAfterCauses(t *testing.T) {
	res := &policies.Result{
		Violations: []policies.Finding{{Rule: "privileged", Field: "spec.containers[0].securityContext.privileged", Message: `container "c" is privileged`, Fix: "set it to false"}},
		Warnings: []policies.Finding{
			{Rule: "probes", Field: "spec.containers[0].livenessProbe", Message: `container "c" has no liveness probe`, Fix: "set it"},
			{Rule: "readOnlyRootFilesystem", Field: "spec.containers[0].securityContext.readOnlyRootFilesystem", Message: "not read-only", Fix: "set it to true"},
		},
	}
	t.Run("denied", func(t *testing.T) {
		resp := respond(schema.GroupKind{Kind: "Pod"}, "p", &podspec.Target{}, res, nil, "")
		if resp.Allowed || len(resp.Warnings) != 0 {
			t.Fatalf("allowed %v, warnings %q", resp.Allowed, resp.Warnings)
		}
		cs := resp.Result.Details.Causes
		if len(cs) != 3 || cs[0].Type != "FieldValueInvalid" || cs[1].Type != CauseWarning || cs[2].Type != CauseWarning ||
			cs[1].Field != "spec.containers[0].livenessProbe" || !strings.HasPrefix(cs[1].Message, "warning: container \"c\" has no liveness probe; fix: set it (podguard rule probes)") {
			t.Errorf("causes %+v", cs)
		}
		if !strings.Contains(resp.Result.Message, "1 violation of") || !strings.HasSuffix(resp.Result.Message, "\n- spec.containers[0].securityContext.readOnlyRootFilesystem: warning: not read-only; fix: set it to true (podguard rule readOnlyRootFilesystem)") {
			t.Errorf("the message counts warnings as violations, or does not end with them (kubectl prints only it for several objects): %s", resp.Result.Message)
		}
	})
	t.Run("admitted", func(t *testing.T) {
		ok := *res
		ok.Allowed, ok.Violations = true, nil
		resp := respond(schema.GroupKind{Kind: "Pod"}, "p", &podspec.Target{}, &ok, nil, "")
		if !resp.Allowed || len(resp.Warnings) != 2 {
			t.Errorf("allowed %v, warnings %q", resp.Allowed, resp.Warnings)
		}
	})
}

// TestHelpURL: the policy's helpURL ends every denial (message and last
// cause) and is where a shortened warning sends the developer.
func TestHelpURL(t *testing.T) {
	const url = "https://wiki.example.com/podguard"
	res := &policies.Result{
		Violations: []policies.Finding{{Rule: "privileged", Field: "spec.containers[0].securityContext.privileged", Message: "privileged", Fix: "set it to false"}},
	}
	resp := respond(schema.GroupKind{Kind: "Pod"}, "p", &podspec.Target{}, res, nil, url)
	cs := resp.Result.Details.Causes
	if last := cs[len(cs)-1]; last.Type != CauseHelp || !strings.Contains(last.Message, url) || !strings.HasSuffix(resp.Result.Message, url+" (podguard)") {
		t.Errorf("denial without the help URL last: %+v\n%s", cs, resp.Result.Message)
	}
	long := []policies.Finding{{Rule: "serviceAccountToken", Field: "spec.automountServiceAccountToken", Message: strings.Repeat("word ", 80), Fix: "set it to false"}}
	ws := warnings(long, nil, 0, url)
	if len(ws) != 1 || !strings.Contains(ws[0], "full text: podguard validate, help: "+url) || len(ws[0]) > maxWarningLength {
		t.Errorf("shortened warning %q (%d bytes)", ws, len(ws[0]))
	}
	if ws := warnings(long, nil, 0, ""); strings.Contains(ws[0], "help:") {
		t.Errorf("a help URL without a policy's: %q", ws)
	}
}
