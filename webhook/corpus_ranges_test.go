package webhook_test

// The corpus on the real API server through the webhook, under a policy
// that allows the UIDs and GIDs real images are built for (by image, and
// for Argo CD by namespace), against podguard validate --mutate
// --target-namespace on the same files: the cluster and CI decide alike.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies/manifest"
)

// corpusRangesPolicy lets Argo CD's namespace run its images' UIDs (dex
// 1001, redis 999), ingress-nginx's images their UIDs and GIDs, and
// Gatekeeper's image its group 999; everything else keeps 1000:1000.
const corpusRangesPolicy = `apiVersion: podguard.dev/v1alpha1
kind: Policy
rules:
  runAsUser:
    overrides:
    - namespaces: [argocd]
      allowedUIDs: [999, 1000, 1001]
    - images: ["registry.k8s.io/ingress-nginx/*"]
      allowedUIDs: [101, 65532]
  runAsGroup:
    overrides:
    - images: ["openpolicyagent/gatekeeper:*"]
      allowedGIDs: [999]
    - images: ["registry.k8s.io/ingress-nginx/*"]
      allowedGIDs: [82, 65532]
`

func TestCorpusWithIDOverridesClusterAndCLIAgree(t *testing.T) {
	c := startCluster(t, clusterConfig{policy: corpusRangesPolicy})
	dir := filepath.Join("..", "cmd", "podguard", "internal", "app", "testdata", "corpus") // the repository's copy of ../shared/corpus
	files, _ := filepath.Glob(filepath.Join(dir, "*.y*ml"))
	jsons, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	files = append(files, jsons...)
	if len(files) < 20 {
		t.Fatalf("found %d corpus files in %s", len(files), dir)
	}
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(corpusRangesPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := testenv.PodguardBinary(t)
	namespaces := map[string]bool{"default": true, "kube-system": true}
	compared, refused, admitted := 0, 0, map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The namespace kubectl apply -n would use for objects naming none:
		// Argo CD's install goes to argocd, the rest to corpus.
		target := "corpus"
		if strings.Contains(f, "argo-cd") {
			target = "argocd"
		}
		docs, err := manifest.Split(f, data)
		if err != nil {
			t.Fatal(err)
		}
		var inputs []input
		var nss []string
		named := false
		for _, d := range docs {
			objs, err := d.Objects()
			if err != nil {
				continue
			}
			for _, o := range objs {
				if !o.Supported() {
					continue
				}
				ns := o.Namespace
				if ns == "" {
					ns = target
				} else {
					named = true
				}
				u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o.Typed)
				if err != nil {
					t.Fatal(err)
				}
				obj := &unstructured.Unstructured{Object: u}
				if gvr, ok := gvrs[o.Kind]; !ok || gvr.GroupVersion().String() != o.APIVersion {
					continue // an API version kube-apiserver 1.37 no longer serves
				}
				inputs = append(inputs, input{name: o.Kind + "/" + o.Name, obj: obj})
				nss = append(nss, ns)
			}
		}
		if len(inputs) == 0 {
			continue
		}
		// The CLI, as CI runs it: with --target-namespace when the file
		// names no namespace (kubectl refuses -n for another one).
		args := []string{"validate", "--mutate", "--policy", policy, "-f", f, "-o", "json"}
		if !named {
			args = append(args, "--target-namespace", target)
		}
		out, _ := exec.Command(bin, args...).Output()
		var rep struct {
			Results []struct {
				Kind, Name, Namespace string
				Allowed               bool
			}
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("%s: %v\n%s", f, err, out)
		}
		cli := map[string]bool{}
		for _, r := range rep.Results {
			cli[r.Kind+"/"+r.Name] = r.Allowed
		}
		for i, in := range inputs {
			if !namespaces[nss[i]] {
				c.namespace(t, nss[i], nil)
				namespaces[nss[i]] = true
			}
			got := admitAllIn(t, c.Config, nss[i], []input{in})[0]
			if !got.allowed && !deniedByPodguard(got.msg) {
				refused++ // the API server's own validation: not podguard's decision
				continue
			}
			want, ok := cli[in.name]
			if !ok {
				t.Errorf("%s %s: judged by the cluster, not by the CLI", filepath.Base(f), in.name)
				continue
			}
			compared++
			if got.allowed != want {
				t.Errorf("%s %s in %s: cluster allowed=%v (%.300s), CLI allowed=%v", filepath.Base(f), in.name, nss[i], got.allowed, got.msg, want)
			}
			if got.allowed {
				admitted[in.name] = true
			}
		}
	}
	// The point of the overrides: these run as their images' IDs.
	for _, name := range []string{"Deployment/argocd-dex-server", "Deployment/argocd-redis", "Deployment/gatekeeper-controller-manager", "Deployment/ingress-nginx-controller"} {
		if !admitted[name] {
			t.Errorf("%s is not admitted under the overrides", name)
		}
	}
	t.Logf("%d corpus objects decided alike by the cluster and the CLI; %d refused by the API server's own validation", compared, refused)
	if compared < 40 {
		t.Errorf("only %d objects compared", compared)
	}
}
