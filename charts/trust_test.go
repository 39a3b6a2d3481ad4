package charts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/hack/testenv"
)

// TestTrustSourcesMounted: every ConfigMap and Secret values.policy's
// image rules read is mounted, optional, where podguard reads it, in the
// webhook's, the audit's and the policy check's pods, and nothing is
// mounted for a policy that reads none.
func TestTrustSourcesMounted(t *testing.T) {
	out, stderr, err := helm(t, append([]string{"template", "podguard", chart, "-n", "podguard", "-f", "testdata/trust-values.yaml"}, apiVersions...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	want := map[string]string{"/etc/podguard-trust/configmaps/cosign-keys": "configMap cosign-keys", "/etc/podguard-trust/secrets/sigstore-root": "secret sigstore-root"}
	pods := 0
	for _, o := range objects(t, out) {
		spec := podSpecOf(o)
		if spec == nil {
			continue
		}
		pods++
		vols := map[string]string{}
		for _, v := range spec["volumes"].([]any) {
			v := v.(map[string]any)
			switch {
			case v["configMap"] != nil:
				cm := v["configMap"].(map[string]any)
				if strings.HasPrefix(v["name"].(string), "trust-") && cm["optional"] != true {
					t.Errorf("%s: trust volume %v is not optional: a missing ConfigMap would keep podguard from starting", kindName(o), v)
				}
				vols[v["name"].(string)] = "configMap " + cm["name"].(string)
			case v["secret"] != nil:
				sec := v["secret"].(map[string]any)
				if strings.HasPrefix(v["name"].(string), "trust-") && sec["optional"] != true {
					t.Errorf("%s: trust volume %v is not optional", kindName(o), v)
				}
				vols[v["name"].(string)] = "secret " + sec["secretName"].(string)
			}
		}
		c := spec["containers"].([]any)[0].(map[string]any)
		got := map[string]string{}
		for _, m := range c["volumeMounts"].([]any) {
			m := m.(map[string]any)
			if p := m["mountPath"].(string); strings.HasPrefix(p, "/etc/podguard-trust/") {
				got[p] = vols[m["name"].(string)]
				if m["readOnly"] != true {
					t.Errorf("%s: %s is not read-only", kindName(o), p)
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s mounts %v, want %v", kindName(o), got, want)
		}
		for p, src := range want {
			if got[p] != src {
				t.Errorf("%s: %s holds %q, want %q", kindName(o), p, got[p], src)
			}
		}
	}
	if pods != 3 {
		t.Errorf("%d pod templates rendered, want the webhook's, the audit's and the policy check's", pods)
	}
	if plain := render(t, nil); strings.Contains(plain, "podguard-trust") {
		t.Error("a policy that reads no trust source still mounts something under /etc/podguard-trust")
	}
}

// podSpecOf returns the pod spec of a Deployment or Job, or nil.
func podSpecOf(o object) map[string]any {
	if o["kind"] != "Deployment" && o["kind"] != "Job" {
		return nil
	}
	spec, _ := o["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	ps, _ := tmpl["spec"].(map[string]any)
	return ps
}

// TestTrustSourcesCheckedBeforeInstall: the policy-check hook reads the
// trust sources the policy names, so an install whose ConfigMap is missing
// fails before any webhook exists, naming it, and succeeds once the
// ConfigMap and Secret hold a key and a trusted root.
func TestTrustSourcesCheckedBeforeInstall(t *testing.T) {
	env := testenv.StartT(t, nil)
	kc := "--kubeconfig=" + env.Kubeconfig
	hooks := runHookJobs(t, env)
	ctx := context.Background()
	cs := env.Clientset
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "trust"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := helm(t, "install", "podguard", chart, "-n", "trust", "-f", "testdata/trust-values.yaml", kc)
	if err == nil || !strings.Contains(stderr, "policy-check") {
		t.Fatalf("helm install with its trust ConfigMap missing: err=%v\n%s", err, stderr)
	}
	if out := hooks.output("trust/podguard-policy-check"); !strings.Contains(out, `ConfigMap "cosign-keys" key "release.pub"`) || !strings.Contains(out, `Secret "sigstore-root"`) {
		t.Errorf("the policy check did not name the missing sources:\n%s", out)
	}
	if vw, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1ListOptions()); err != nil || len(vw.Items) > 0 {
		t.Errorf("a failed install registered webhooks: %v %v", err, vw)
	}
	if out, stderr, err := helm(t, "uninstall", "podguard", "-n", "trust", kc); err != nil {
		t.Fatalf("helm uninstall of the failed release: %v\n%s%s", err, out, stderr)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cosign-keys"}, Data: map[string]string{"release.pub": pub, "scanner.pub": "not a key"}}
	if _, err := cs.CoreV1().ConfigMaps("trust").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	root := []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sigstore-root"}, Data: map[string][]byte{"trusted_root.json": root}}
	if _, err := cs.CoreV1().Secrets("trust").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A key that is not one is refused too, by its field.
	if _, stderr, err := helm(t, "install", "podguard", chart, "-n", "trust", "-f", "testdata/trust-values.yaml", kc); err == nil {
		t.Fatalf("helm install with a malformed key accepted:\n%s", stderr)
	}
	if out := hooks.output("trust/podguard-policy-check"); !strings.Contains(out, `rules.imageVulnerabilities.scans[0].authorities[0].key.pemFrom`) || strings.Contains(out, "release.pub") {
		t.Errorf("the policy check did not name the malformed key alone:\n%s", out)
	}
	if _, stderr, err := helm(t, "uninstall", "podguard", "-n", "trust", kc); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, stderr)
	}
	cm.Data["scanner.pub"] = pub
	if _, err := cs.CoreV1().ConfigMaps("trust").Update(ctx, cm, metav1UpdateOptions()); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := helm(t, "install", "podguard", chart, "-n", "trust", "-f", "testdata/trust-values.yaml", kc); err != nil {
		t.Fatalf("helm install with its trust sources present: %v\n%s%s\n%s", err, out, stderr, hooks.output("trust/podguard-policy-check"))
	}
	if out := hooks.output("trust/podguard-policy-check"); !strings.Contains(out, "read from --trust-dir and usable") {
		t.Errorf("the policy check does not say it read the trust sources:\n%s", out)
	}
}

// TestRegistryValuesMounted: each registry credential Secret and the CA
// ConfigMap of values.registries reaches serve, in the webhook's and the
// audit's pods, as a file its flag names inside a read-only mount of an
// optional volume of that object.
func TestRegistryValuesMounted(t *testing.T) {
	want := map[string]string{"--registry-auth-file": "secret pull-secret,secret mirror-pull", "--registry-ca-file": "configMap registry-ca"}
	serving := 0
	for _, o := range objects(t, render(t, combos["registries"])) {
		spec := podSpecOf(o)
		if spec == nil || o["kind"] != "Deployment" {
			continue
		}
		serving++
		vols := map[string]string{}
		for _, v := range spec["volumes"].([]any) {
			v := v.(map[string]any)
			if sec, ok := v["secret"].(map[string]any); ok && sec["optional"] == true {
				vols[v["name"].(string)] = "secret " + sec["secretName"].(string)
			}
			if cm, ok := v["configMap"].(map[string]any); ok && cm["optional"] == true {
				vols[v["name"].(string)] = "configMap " + cm["name"].(string)
			}
		}
		c := spec["containers"].([]any)[0].(map[string]any)
		got := map[string][]string{}
		for _, a := range c["args"].([]any) {
			flag, path, _ := strings.Cut(a.(string), "=")
			if want[flag] == "" {
				continue
			}
			from := ""
			for _, m := range c["volumeMounts"].([]any) {
				m := m.(map[string]any)
				if strings.HasPrefix(path, m["mountPath"].(string)+"/") && m["readOnly"] == true {
					from = vols[m["name"].(string)]
				}
			}
			got[flag] = append(got[flag], from)
		}
		for flag, w := range want {
			if g := strings.Join(got[flag], ","); g != w {
				t.Errorf("%s: %s reads %q, want %q", kindName(o), flag, g, w)
			}
		}
	}
	if serving != 2 {
		t.Errorf("%d Deployments, want the webhook's and the audit's", serving)
	}
}

// TestPodPullSecretsRBAC: registries.podPullSecrets grants the webhook's
// and the audit's ClusterRoles get on Secrets, nothing more (no list or
// watch), and without it neither ClusterRole names Secrets.
func TestPodPullSecretsRBAC(t *testing.T) {
	for _, on := range []bool{false, true} {
		var sets []string
		if on {
			sets = []string{"registries.podPullSecrets=true"}
		}
		roles := 0
		for _, o := range objects(t, render(t, sets)) {
			if o["kind"] != "ClusterRole" {
				continue
			}
			name := o["metadata"].(map[string]any)["name"].(string)
			if name != "podguard" && name != "podguard-audit" {
				continue
			}
			roles++
			var verbs []string
			for _, r := range o["rules"].([]any) {
				r := r.(map[string]any)
				for _, res := range r["resources"].([]any) {
					if res == "secrets" {
						for _, v := range r["verbs"].([]any) {
							verbs = append(verbs, v.(string))
						}
					}
				}
			}
			want := ""
			if on {
				want = "get"
			}
			if got := strings.Join(verbs, ","); got != want {
				t.Errorf("podPullSecrets=%v: ClusterRole %s has %q on secrets, want %q", on, name, got, want)
			}
		}
		if roles != 2 {
			t.Errorf("podPullSecrets=%v: %d of the webhook's and audit's ClusterRoles rendered", on, roles)
		}
	}
}

// TestTUFRootMounted: the ConfigMap holding a TUF repository's initial
// root.json is mounted like any trust source, where podguard reads it:
// the chart's template and rules.TrustSources agree.
func TestTUFRootMounted(t *testing.T) {
	out, stderr, err := helm(t, append([]string{"template", "podguard", chart, "-n", "podguard", "-f", "testdata/tuf-values.yaml"}, apiVersions...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr)
	}
	for _, o := range objects(t, out) {
		spec := podSpecOf(o)
		if spec == nil {
			continue
		}
		mounted := false
		for _, m := range spec["containers"].([]any)[0].(map[string]any)["volumeMounts"].([]any) {
			mounted = mounted || m.(map[string]any)["mountPath"] == "/etc/podguard-trust/configmaps/sigstore-tuf"
		}
		if !mounted {
			t.Errorf("%s does not mount the TUF root's ConfigMap", kindName(o))
		}
	}
}
