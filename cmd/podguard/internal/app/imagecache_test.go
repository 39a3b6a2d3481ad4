package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/rules"
)

// TestVerifyImagesOfflineFromCacheDir: validate --verify-images
// --cache-dir keeps what it verified; --offline then asks no registry and
// judges by that file under the policy's durations, as the webhook's cache
// is judged during an outage: a digest verified within staleIfError is
// admitted with a warning, one never verified (or verified under another
// key, or too long ago) is not.
func TestVerifyImagesOfflineFromCacheDir(t *testing.T) {
	reg := testenv.StartRegistry(t)
	key, otherKey := sigtest.NewSigner(t), sigtest.NewSigner(t)
	sign := func(repoTag string) string {
		d := reg.PushRandom(t, repoTag)
		repo := strings.SplitN(repoTag, ":", 2)[0]
		sigtest.Sign(t, reg, key, repo, d)
		return reg.Host + "/" + repo + "@" + d.String()
	}
	cached, notCached := sign("team/app:1"), sign("team/app:2")

	dir := t.TempDir()
	policyWith := func(name, pem string) string {
		ps := rules.ImageSignaturesParams{VerdictCache: rules.VerdictCache{VerdictTTL: "1s", StaleIfError: "4s"}, Trust: []rules.ImageTrust{{
			Images: []string{reg.Host + "/team/*"}, Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: pem}}}}}}
		return write(t, dir, name, testenv.ImageSignaturesPolicy(t, ps))
	}
	policy, otherPolicy := policyWith("policy.yaml", key.PEM), policyWith("other.yaml", otherKey.PEM)
	pod := func(image string) string {
		return write(t, dir, strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(image)+".yaml",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: \""+image+"\"}]\n")
	}
	cache := filepath.Join(dir, "cache")
	validate := func(image string, extra ...string) run {
		return podguard(t, "", append([]string{"validate", "--mutate", "-f", pod(image), "--verify-images", "--cache-dir", cache}, extra...)...)
	}

	if r := validate(cached, "--policy", policy, "--registry-ca-file", reg.CAFile); r.code != 0 {
		t.Fatalf("online, a signed digest: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if fi, err := os.Stat(filepath.Join(cache, "image-verdicts.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the cache file: %v %v, want it written, private to its user", fi, err)
	}
	start := time.Now()

	if r := validate(cached, "--policy", policy, "--offline"); r.code != 0 {
		t.Errorf("offline, a digest verified a moment ago: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := validate(notCached, "--policy", policy, "--offline"); r.code != 1 || !strings.Contains(r.out, "could not be verified") || !strings.Contains(r.out, "offline") {
		t.Errorf("offline, a digest never verified: exit %d, want a denial saying it could not be verified offline\n%s%s", r.code, r.out, r.err)
	}
	if r := validate(cached, "--policy", otherPolicy, "--offline"); r.code != 1 {
		t.Errorf("offline, a digest verified under another key: exit %d, want a denial\n%s%s", r.code, r.out, r.err)
	}
	time.Sleep(time.Until(start.Add(1500 * time.Millisecond))) // past verdictTTL, within staleIfError
	if r := validate(cached, "--policy", policy, "--offline", "-v"); r.code != 0 || !strings.Contains(r.out, "admitted on its verification of") {
		t.Errorf("offline, past verdictTTL and within staleIfError: exit %d, want admitted with a warning\n%s%s", r.code, r.out, r.err)
	}
	time.Sleep(time.Until(start.Add(4500 * time.Millisecond))) // past staleIfError
	if r := validate(cached, "--policy", policy, "--offline"); r.code != 1 {
		t.Errorf("offline, past staleIfError: exit %d, want a denial\n%s%s", r.code, r.out, r.err)
	}

	for _, args := range [][]string{
		{"validate", "-f", pod(cached), "--policy", policy, "--verify-images", "--offline"},
		{"validate", "-f", pod(cached), "--policy", policy, "--cache-dir", cache},
	} {
		if r := podguard(t, "", args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (bad flags)\n%s", args, r.code, r.err)
		}
	}
}
