package policies_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/api/v1alpha1"
)

func exception(ns, name string, spec v1alpha1.PodGuardExceptionSpec) v1alpha1.PodGuardException {
	return v1alpha1.PodGuardException{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

// redisDeployment runs as 999 in namespace argocd.
func redisDeployment(name string) *appsv1.Deployment {
	spec := testenv.CompliantSpec("redis", "registry.example/redis:7")
	spec.SecurityContext.RunAsUser = ptr.To[int64](999)
	return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "argocd"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
}

// TestExceptions: a PodGuardException lifts its rules from its workloads
// in its own namespace, and nothing else; the policy decides which rules
// may be excepted and for how long; expired ones stop applying.
func TestExceptions(t *testing.T) {
	now := time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-24 * time.Hour))
	ok := exception("argocd", "redis-uid", v1alpha1.PodGuardExceptionSpec{Rules: []string{"runAsUser"},
		Workloads: []v1alpha1.WorkloadRef{{Kind: "Deployment", Name: "argocd-redis"}}, Reason: "redis runs as 999", Expires: "2027-02-01"})
	ok.CreationTimestamp = created
	baseline := exception("argocd", "privileged", v1alpha1.PodGuardExceptionSpec{Rules: []string{"privileged"},
		Workloads: []v1alpha1.WorkloadRef{{Kind: "Deployment", Name: "argocd-redis"}}, Reason: "x", Expires: "2027-02-01"})
	tooLong := exception("argocd", "too-long", v1alpha1.PodGuardExceptionSpec{Rules: []string{"runAsUser"},
		Workloads: []v1alpha1.WorkloadRef{{Kind: "Deployment", Name: "argocd-redis"}}, Reason: "x", Expires: "2027-12-01"})
	tooLong.CreationTimestamp = created
	emptySel := exception("argocd", "empty-selector", v1alpha1.PodGuardExceptionSpec{Rules: []string{"runAsUser"},
		Selector: &metav1.LabelSelector{}, Reason: "x", Expires: "2027-02-01"})
	expired := exception("argocd", "expired", v1alpha1.PodGuardExceptionSpec{Rules: []string{"runAsUser"},
		Workloads: []v1alpha1.WorkloadRef{{Kind: "Deployment", Name: "old-redis"}}, Reason: "was needed", Expires: "2027-01-05"})
	expired.CreationTimestamp = metav1.NewTime(now.Add(-30 * 24 * time.Hour))

	e, states, err := policies.NewWithExceptions(load.Default(""), []v1alpha1.PodGuardException{ok, baseline, tooLong, emptySel, expired}, now)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]policies.ExceptionState{}
	for _, s := range states {
		byName[s.Name] = s
	}
	for name, want := range map[string]string{"redis-uid": "active", "privileged": "ignored", "too-long": "ignored", "empty-selector": "ignored", "expired": "expired"} {
		if got := byName[name].State; got != want {
			t.Errorf("%s: state %q (%s), want %q", name, got, byName[name].Problem, want)
		}
	}
	for name, want := range map[string]string{"privileged": "does not let rule privileged be excepted", "too-long": "exceptions.maxDuration", "empty-selector": "empty selector"} {
		if !strings.Contains(byName[name].Problem, want) {
			t.Errorf("%s: problem %q does not say %q", name, byName[name].Problem, want)
		}
	}

	attrs := policies.Attributes{Namespace: "argocd", Now: now}
	res, _ := e.Validate(redisDeployment("argocd-redis"), attrs)
	if !res.Allowed || !slices.ContainsFunc(res.Exempted, func(x policies.Exempted) bool { return x.Exception == "argocd/redis-uid" && x.Rule == "runAsUser" }) {
		t.Errorf("the exception does not lift runAsUser from its workload: %+v", res)
	}
	// Another workload, another namespace: not covered.
	if res, _ := e.Validate(redisDeployment("other-redis"), attrs); res.Allowed {
		t.Errorf("the exception covers a workload it does not name")
	}
	other := redisDeployment("argocd-redis")
	other.Namespace = "shop"
	if res, _ := e.Validate(other, policies.Attributes{Namespace: "shop", Now: now}); res.Allowed {
		t.Errorf("the exception covers a namespace other than its own")
	}
	// The expired one: denied, with a warning naming it.
	res, _ = e.Validate(redisDeployment("old-redis"), attrs)
	if res.Allowed || !slices.ContainsFunc(res.Warnings, func(f policies.Finding) bool {
		return strings.Contains(f.Message, "PodGuardException argocd/expired") && strings.Contains(f.Message, "expired")
	}) {
		t.Errorf("an expired exception: %+v", res)
	}
	// Without restart: the same Enforcer, judged after the expiry.
	later := policies.Attributes{Namespace: "argocd", Now: now.Add(30 * 24 * time.Hour)}
	if res, _ := e.Validate(redisDeployment("argocd-redis"), later); res.Allowed {
		t.Errorf("the exception still applies after it expired")
	}

	// Admission of the objects themselves: the baseline rule is refused.
	if probs := e.ValidateException(&baseline, now); len(probs) == 0 || !strings.Contains(strings.Join(probs, "\n"), "spec.rules[0]") {
		t.Errorf("an exception of a baseline rule is not refused with its field: %v", probs)
	}
	past := ok
	past.Spec.Expires = "2027-01-01"
	if probs := e.ValidateException(&past, now); !strings.Contains(strings.Join(probs, "\n"), "already past") {
		t.Errorf("an exception that has expired already is not refused: %v", probs)
	}

	// A policy that turns exceptions off ignores them all.
	p := load.Default("")
	p.Exceptions.Enabled = ptr.To(false)
	if _, states, _ := policies.NewWithExceptions(p, []v1alpha1.PodGuardException{ok}, now); states[0].State != "ignored" {
		t.Errorf("exceptions.enabled: false: %+v", states[0])
	}
}
