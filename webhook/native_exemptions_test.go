package webhook_test

// The exported exemptions decide like the webhook's: the same inputs, in an
// exempt namespace (glob), by an exempt user and by a member of an exempt
// group, and with a container exempt by name and image, go through the
// webhook and through the export of the same policy (exportPolicies, which
// has every kind of exemption).

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/native"
)

func TestNativeEquivalenceExemptions(t *testing.T) {
	c := startCluster(t, clusterConfig{policy: exportPolicies})
	c.namespace(t, equivNS, nil)
	c.namespace(t, "legacy-a", nil)
	ctx := context.Background()
	// The exempt user and group may create what they send.
	if _, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "equiv-requesters"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{
			{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "system:serviceaccount:ci:runner"},
			{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "dev"},
			{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "ci-admins"},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var inputs []input
	for _, in := range equivalenceInputs(t, 300) {
		if strings.HasPrefix(in.name, "psa ") {
			continue
		}
		inputs = append(inputs, in)
		// The same object with its first container exempt by name and
		// image, for the rules that exemption names.
		u := in.obj.DeepCopy()
		if spec := podSpecOf(u); spec != nil {
			if cs, _ := spec["containers"].([]any); len(cs) > 0 {
				if c0, ok := cs[0].(map[string]any); ok {
					c0["name"], c0["image"] = "istio-init", "docker.io/istio/proxyv2:1.20.0"
					u.SetName(u.GetName() + "-mesh")
					inputs = append(inputs, input{name: in.name + " (istio-init)", obj: u})
				}
			}
		}
	}
	as := func(user string, groups ...string) *rest.Config {
		cfg := rest.CopyConfig(c.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
		return cfg
	}
	type requester struct {
		name, ns string
		cfg      *rest.Config
	}
	requesters := []requester{
		{"admin", equivNS, c.Config},
		{"admin in legacy-a", "legacy-a", c.Config},
		// The exemption names a user and a group: it needs both.
		{"the CI runner in ci-admins", equivNS, as("system:serviceaccount:ci:runner", "ci-admins")},
		{"the CI runner outside ci-admins", equivNS, as("system:serviceaccount:ci:runner")},
		{"another ci-admins member", equivNS, as("dev", "ci-admins")},
	}
	viaWebhook := make([][]outcome, len(requesters))
	for i, r := range requesters {
		viaWebhook[i] = admitAllIn(t, r.cfg, r.ns, inputs)
	}

	c.removePodguard(t)
	p, err := load.Bytes([]byte(exportPolicies), "test", "podguard")
	if err != nil {
		t.Fatal(err)
	}
	exported, err := native.Build(p, native.Options{ExcludeNamespaces: []string{"kube-system", "podguard"}, OptOutLabel: "podguard.dev/ignore"})
	if err != nil {
		t.Fatal(err)
	}
	applyExport(t, c, exported)

	for i, r := range requesters {
		viaNative := admitAllIn(t, r.cfg, r.ns, inputs)
		mismatches, denied, exemptedSome := 0, 0, 0
		for j, in := range inputs {
			w, n := viaWebhook[i][j], viaNative[j]
			switch {
			case w.allowed != n.allowed:
				mismatches++
				t.Errorf("%s, %s: webhook allowed=%v (%s), native allowed=%v (%s)", r.name, in.name, w.allowed, w.msg, n.allowed, n.msg)
			case w.allowed && w.stored != n.stored:
				mismatches++
				t.Errorf("%s, %s: stored objects differ\n webhook %s\n native  %s", r.name, in.name, w.stored, n.stored)
			case !w.allowed && deniedByPodguard(w.msg) != deniedByPodguard(n.msg):
				mismatches++
				t.Errorf("%s, %s: one denial is podguard's, the other the API server's\n webhook %s\n native  %s", r.name, in.name, w.msg, n.msg)
			}
			if deniedByPodguard(n.msg) {
				denied++
			}
			// What the exemption changed: the admin's answer in the
			// plain namespace is the reference.
			if i > 0 && viaWebhook[0][j].allowed != w.allowed {
				exemptedSome++
			}
		}
		t.Logf("%s: %d inputs, %d denied by podguard, %d decided otherwise than for the admin in %s; %d mismatches", r.name, len(inputs), denied, exemptedSome, equivNS, mismatches)
		// The exempt requesters must have changed decisions, or the
		// exemption goes untested; the others none.
		if exempt := i == 1 || i == 2; exempt != (exemptedSome > 0) {
			t.Errorf("%s: %d decisions differ from the admin's in %s (exempt: %v)", r.name, exemptedSome, equivNS, exempt)
		}
	}
	// The container exemption must change some decisions too.
	changed := 0
	for j := 0; j+1 < len(inputs); j++ {
		if strings.HasSuffix(inputs[j+1].name, " (istio-init)") && !viaWebhook[0][j].allowed && viaWebhook[0][j+1].allowed {
			changed++
		}
	}
	if changed == 0 {
		t.Error("the container exemption changed no decision: it goes untested")
	}
	t.Logf("the container exemption admitted %d inputs otherwise denied", changed)
}
