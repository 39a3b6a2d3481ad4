package rules_test

import (
	"path/filepath"
	"podguard.dev/podguard/hack/testenv/fixtures"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/rules"
)

// TestSlimKeepsVerdicts: every rule finds on the slim copy of every
// fixture exactly what it finds on the original, so the background audit
// may judge the copies it caches.
func TestSlimKeepsVerdicts(t *testing.T) {
	all := rules.Build(load.Default(""))
	paths := allFixtureFiles(t)
	n := 0
	for _, path := range paths {
		if filepath.Ext(filepath.Base(path)) != ".yaml" || filepath.Base(filepath.Dir(path)) == "golden" {
			continue
		}
		f := fixtures.Read(t, path)
		slim := rules.Slim(f.Obj.Typed)
		for _, r := range all {
			a, b := fixtures.Findings(r, fixtures.Target(t, f.Obj.Typed)), fixtures.Findings(r, fixtures.Target(t, slim))
			if !slices.Equal(a, b) {
				t.Errorf("%s: %s finds %q on the original, %q on the slim copy", path, r.ID, a, b)
			}
		}
		n++
	}
	if n < 50 {
		t.Fatalf("only %d fixtures found", n)
	}
}

// TestSlimDrops: status, managedFields and annotations no rule reads are
// gone; what rules and the audit read stays.
func TestSlimDrops(t *testing.T) {
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", UID: "u", Labels: map[string]string{"app": "a"},
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}",
				"container.apparmor.security.beta.kubernetes.io/c": "unconfined"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "r", UID: "o"}}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Message: "long"},
	}
	s, ok := rules.Slim(pod).(*corev1.Pod)
	if !ok {
		t.Fatalf("Slim returned %T", rules.Slim(pod))
	}
	if s.Status.Phase != "" || s.ManagedFields != nil || len(s.Annotations) != 1 || s.Annotations["container.apparmor.security.beta.kubernetes.io/c"] != "unconfined" {
		t.Errorf("not slim: %+v", s)
	}
	if s.Name != "p" || s.UID != "u" || s.Labels["app"] != "a" || len(s.OwnerReferences) != 1 || s.Spec.Containers[0].Image != "i" || s.Kind != "Pod" {
		t.Errorf("lost what the audit reads: %+v", s)
	}
	if pod.Status.Phase != corev1.PodRunning {
		t.Error("Slim changed its input")
	}
}

// TestRulesReadOnlyWhatTheyDeclare holds every rule to its Reads: judged
// on a copy of every fixture (of every rule) whose pod spec holds only the
// fields the rule declares, it finds exactly what it finds on the whole
// object. A rule that starts reading another field fails here until it
// declares it, and then the audit's slim copy keeps it.
func TestRulesReadOnlyWhatTheyDeclare(t *testing.T) {
	all := rules.Build(load.Default(""))
	paths := allFixtureFiles(t)
	for _, r := range all {
		d, _ := rules.Lookup(r.ID)
		if len(d.Reads) == 0 {
			t.Errorf("rule %s declares no fields it reads", r.ID)
			continue
		}
		for _, path := range paths {
			f := fixtures.Read(t, path)
			projected := f.Obj.Typed.DeepCopyObject()
			pt := fixtures.Target(t, projected)
			*pt.Spec = d.Reads.Project(pt.Spec)
			if a, b := fixtures.Findings(r, fixtures.Target(t, f.Obj.Typed)), fixtures.Findings(r, fixtures.Target(t, projected)); !slices.Equal(a, b) {
				t.Errorf("%s: %s finds %q on the whole object, %q on the fields it declares (%v): it reads a field it does not declare", path, r.ID, a, b, d.Reads)
			}
		}
	}
}
