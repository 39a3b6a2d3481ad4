package webhook

import (
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"podguard.dev/podguard/hack/testenv"
)

func testHandler(t *testing.T, policy string, mutating bool) *Handler {
	t.Helper()
	e := testenv.Enforcer(t, policy)
	m := NewMetrics(prometheus.NewRegistry())
	s := &PolicyStore{log: logr.Discard(), metrics: m}
	s.current.Store(e)
	return &Handler{Store: s, Log: logr.Discard(), Metrics: m, Mutating: mutating}
}

func podRequest(op admissionv1.Operation, sub string, obj, old string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "apps", Name: "p",
		Operation: op, SubResource: sub, UserInfo: authenticationv1.UserInfo{Username: "alice"},
		Object: runtime.RawExtension{Raw: []byte(obj)}, OldObject: runtime.RawExtension{Raw: []byte(old)},
	}}
}

const hostPIDPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"hostPID":true,"containers":[{"name":"c","image":"c:1"}]}}`

func TestAuditAnnotations(t *testing.T) {
	h := testHandler(t, "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: audit\n", false)
	resp := h.Handle(t.Context(), podRequest(admissionv1.Create, "", hostPIDPod, ""))
	if !resp.Allowed {
		t.Fatalf("audit mode denied: %+v", resp.Result)
	}
	if !strings.Contains(resp.AuditAnnotations["hostNamespaces"], "spec.hostPID") {
		t.Errorf("audit annotations %v", resp.AuditAnnotations)
	}
	if len(resp.Warnings) == 0 {
		t.Error("warn rules still warn in audit mode")
	}
}

func TestResizeJudgesResourcesOnly(t *testing.T) {
	h := testHandler(t, "", false)
	obj := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"hostPID":true,"containers":[{"name":"c","image":"c:1","resources":{"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"2"}}}]}}`
	resp := h.Handle(t.Context(), podRequest(admissionv1.Update, "resize", obj, obj))
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "resources.requests.cpu") {
		t.Fatalf("a resize to requests above limits must be denied: %+v", resp.Result)
	}
	if strings.Contains(resp.Result.Message, "hostNamespaces") {
		t.Errorf("a resize must judge resources only: %s", resp.Result.Message)
	}
}

func TestMutatePodUpdateIsLeftAlone(t *testing.T) {
	h := testHandler(t, "", true)
	resp := h.Handle(t.Context(), podRequest(admissionv1.Update, "", hostPIDPod, hostPIDPod))
	if !resp.Allowed || len(resp.Patch) > 0 {
		t.Errorf("pods are mutated on create only: %+v", resp)
	}
	resp = h.Handle(t.Context(), podRequest(admissionv1.Create, "", hostPIDPod, ""))
	if !resp.Allowed || resp.PatchType == nil || !strings.Contains(string(resp.Patch), `"/spec/securityContext"`) {
		t.Errorf("create must be patched: %s", resp.Patch)
	}
}

func TestTemplatesMutatedOnlyWhenAsked(t *testing.T) {
	dep := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"c:1"}]}}}}`
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Namespace: "apps", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(dep)}}}
	if resp := testHandler(t, "", true).Handle(t.Context(), req); len(resp.Patch) > 0 {
		t.Errorf("template mutated by default: %s", resp.Patch)
	}
	resp := testHandler(t, "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmutation:\n  templates: true\n", true).Handle(t.Context(), req)
	if !strings.Contains(string(resp.Patch), "/spec/template/spec/securityContext") {
		t.Errorf("mutation.templates: true must patch the template: %s", resp.Patch)
	}
	// An update that leaves the template unchanged is not mutated (no surprise rollout).
	req.Operation, req.OldObject = admissionv1.Update, runtime.RawExtension{Raw: []byte(dep)}
	resp = testHandler(t, "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmutation:\n  templates: true\n", true).Handle(t.Context(), req)
	if len(resp.Patch) > 0 {
		t.Errorf("unchanged template patched on update: %s", resp.Patch)
	}
}

// TestInvalidMatchesAPIErrors pins the hand-built denial to what
// apierrors.NewInvalid builds from the same field errors.
