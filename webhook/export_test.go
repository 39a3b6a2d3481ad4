package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/native"
)

// exportPolicies is the export of a policy written for these tests: every
// kind of exemption (namespace glob, user, group, image, container name,
// one expiring), a fix of every kind in force, and maxLimits.
const exportPolicies = `apiVersion: podguard.dev/v1alpha1
kind: Policy
rules:
  resources:
    maxLimits: {cpu: "4", memory: 8Gi}
  readOnlyRootFilesystem:
    action: enforce
  imageTag:
    action: audit
exemptions:
- reason: the mesh's init container
  rules: [runAsUser, runAsNonRoot, capabilities]
  containerNames: [istio-init]
  images: ["docker.io/istio/proxyv2:*"]
- reason: legacy namespaces
  namespaces: ["legacy-*"]
- reason: the CI runner
  users: ["system:serviceaccount:ci:runner"]
  groups: ["ci-admins"]
  expires: "2999-01-01"
`

// TestExportTypeChecksAndApplies: every exported ValidatingAdmissionPolicy
// type-checks against the real API server's schemas with no warning (the
// type checker kube-controller-manager runs, which envtest lacks), and the
// real kubectl applies the export with --dry-run=server, without warnings.
func TestExportTypeChecksAndApplies(t *testing.T) {
	env := testenv.StartT(t, nil)
	dc := discovery.NewDiscoveryClientForConfigOrDie(env.Config)
	tc := validating.TypeChecker{SchemaResolver: &resolver.ClientDiscoveryResolver{Discovery: dc},
		RestMapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
	for name, policyYAML := range map[string]string{"default": "", "test": exportPolicies} {
		p, err := load.Bytes([]byte(policyYAML), name, "podguard")
		if err != nil {
			t.Fatal(err)
		}
		e, err := native.Build(p, native.Options{ExcludeNamespaces: []string{"kube-system", "podguard"}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range e.ValidatingPolicies {
			vap := &e.ValidatingPolicies[i]
			if ws := tc.Check(vap); len(ws) > 0 {
				for _, w := range ws {
					t.Errorf("%s policy, %s: %s: %s", name, vap.Name, w.FieldRef, w.Warning)
				}
			}
		}
		y, err := e.YAML()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(env.Kubectl, "--kubeconfig", env.Kubeconfig, "apply", "--dry-run=server", "-f", "-")
		cmd.Stdin = bytes.NewReader(y)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil || errOut.Len() > 0 {
			t.Errorf("%s policy: kubectl apply --dry-run=server: %v\n%s%s", name, err, out.String(), errOut.String())
		}
		if n := strings.Count(out.String(), "(server dry run)"); n != len(e.Objects()) {
			t.Errorf("%s policy: %d objects applied, want %d:\n%s", name, n, len(e.Objects()), out.String())
		}
	}
}

// TestStaticManifests: kube-apiserver started with the exported static
// layout and no policy objects in its API denies a privileged pod and
// fills in a bare one, before any webhook or API object exists.
func TestStaticManifests(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd; make test runs it")
	}
	dir := filepath.Join(t.TempDir(), "static")
	p := load.Default("podguard")
	e, err := native.Build(p, native.Options{Static: true, ExcludeNamespaces: []string{"kube-system", "podguard"}})
	if err != nil {
		t.Fatal(err)
	}
	files, err := e.StaticFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, err := testenv.StartWith(map[string]string{"admission-control-config-file": filepath.Join(dir, native.AdmissionConfigFile)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	cs := env.Clientset
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vaps, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
	if err != nil || len(vaps.Items) != 0 {
		t.Fatalf("the API holds policies (%v): %d", err, len(vaps.Items))
	}
	waitNative(t, cs, "apps", 30*time.Second)
	priv := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "priv"}, Spec: bareSpec("c")}
	privileged(&priv.Spec)
	if _, err := cs.CoreV1().Pods("apps").Create(ctx, priv, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "podguard") ||
		!strings.Contains(err.Error(), native.StaticSuffix) {
		t.Errorf("a privileged pod: %v", err)
	}
	bare, err := cs.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare"}, Spec: bareSpec("c")}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a bare pod: %v", err)
	}
	sc, ctr := bare.Spec.SecurityContext, bare.Spec.Containers[0]
	if sc == nil || *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1000 || !*sc.RunAsNonRoot || sc.SeccompProfile == nil ||
		ctr.SecurityContext == nil || *ctr.SecurityContext.AllowPrivilegeEscalation || ctr.Resources.Limits.Cpu().String() != "500m" {
		t.Errorf("the bare pod was not filled in: %s", fmt.Sprint(bare.Spec))
	}
	_ = kubernetes.Interface(cs)
}
