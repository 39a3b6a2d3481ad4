package charts

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
)

// TestOptOutLabelOnlyForAdmins: the chart's ValidatingAdmissionPolicy lets
// only cluster admins set the label that takes a namespace out of podguard's
// webhooks; a namespace owner who may otherwise edit namespaces cannot.
func TestOptOutLabelOnlyForAdmins(t *testing.T) {
	env := testenv.StartT(t, nil)
	var err error
	ctx := context.Background()
	for _, o := range objects(t, render(t, nil)) {
		if k := o["kind"]; k == "ValidatingAdmissionPolicy" || k == "ValidatingAdmissionPolicyBinding" {
			y, _ := yaml.Marshal(o)
			if out, err := execKubectl(env, string(y), "apply", "-f", "-").CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
	}
	cs := env.Clientset
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A namespace owner allowed to update namespaces.
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ns-editor"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "update", "patch"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ns-editor"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ns-editor"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"system:authenticated"}}
	alice := kubernetes.NewForConfigOrDie(cfg)
	label := []byte(`{"metadata":{"labels":{"podguard.dev/ignore":"true"}}}`)
	other := []byte(`{"metadata":{"labels":{"team":"a"}}}`)

	// The policy and the RBAC binding take a moment to be loaded by the
	// API server.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = alice.CoreV1().Namespaces().Patch(ctx, "team-a", types.MergePatchType, label, metav1.PatchOptions{})
		if time.Now().After(deadline) {
			break
		}
		if err != nil {
			if strings.Contains(err.Error(), "cannot patch resource") {
				time.Sleep(250 * time.Millisecond)
				continue // RBAC not yet in the authorizer's cache
			}
			break
		}
		// Not yet enforced: undo and retry.
		_, _ = cs.CoreV1().Namespaces().Patch(ctx, "team-a", types.MergePatchType, []byte(`{"metadata":{"labels":{"podguard.dev/ignore":null}}}`), metav1.PatchOptions{})
		time.Sleep(250 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "only cluster admins may set or change the podguard opt-out label") {
		t.Fatalf("a namespace owner set the opt-out label: %v", err)
	}
	if _, err := alice.CoreV1().Namespaces().Patch(ctx, "team-a", types.MergePatchType, other, metav1.PatchOptions{}); err != nil {
		t.Errorf("other labels must stay editable: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, "team-a", types.MergePatchType, label, metav1.PatchOptions{}); err != nil {
		t.Errorf("a cluster admin (system:masters) must be able to opt a namespace out: %v", err)
	}
}
