package app_test

import (
	"strings"
	"testing"

	"podguard.dev/podguard/hack/testenv"
)

// TestResolveDigests: with imageDigest's fix on, mutate and validate
// --mutate --resolve-digests pin tags to what the registry (in process,
// over TLS) says, as the webhook does; without the flag the CLI stays
// offline and reports the tag.
func TestResolveDigests(t *testing.T) {
	reg := testenv.StartRegistry(t)
	digest := reg.PushRandom(t, "team/app:1.0")
	dir := t.TempDir()
	policy := write(t, dir, "policy.yaml", "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  imageDigest: {action: enforce, mutate: true}\n")
	manifest := strings.Replace(compliantPod, "image: registry.example/c:1", "image: "+reg.Host+"/team/app:1.0 # the app", 1)
	if !strings.Contains(manifest, reg.Host) {
		t.Fatalf("the fixture pod has no image to replace:\n%s", compliantPod)
	}
	pod := write(t, dir, "pod.yaml", manifest)

	m := podguard(t, "", "mutate", "-f", pod, "--policy", policy, "--resolve-digests", "--registry-ca-file", reg.CAFile)
	if m.code != 0 || !strings.Contains(m.out, "image: "+reg.Host+"/team/app:1.0@"+digest.String()+" # the app") {
		t.Errorf("mutate --resolve-digests: exit %d\n%s%s", m.code, m.out, m.err)
	}
	if v := podguard(t, "", "validate", "--mutate", "-f", pod, "--policy", policy, "--resolve-digests", "--registry-ca-file", reg.CAFile); v.code != 0 {
		t.Errorf("validate --mutate --resolve-digests: exit %d\n%s%s", v.code, v.out, v.err)
	}
	// Offline (no flag), the tag is reported as the cluster would if its
	// registry were down.
	if v := podguard(t, "", "validate", "--mutate", "-f", pod, "--policy", policy); v.code != 1 || !strings.Contains(v.out, "imageDigest") {
		t.Errorf("validate --mutate offline: exit %d\n%s%s", v.code, v.out, v.err)
	}
	// A registry it cannot trust resolves nothing.
	if v := podguard(t, "", "validate", "--mutate", "-f", pod, "--policy", policy, "--resolve-digests"); v.code != 1 {
		t.Errorf("validate --resolve-digests without the registry's CA: exit %d\n%s%s", v.code, v.out, v.err)
	}
}
