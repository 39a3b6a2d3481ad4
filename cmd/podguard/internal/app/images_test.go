package app_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/cmd/podguard/internal/imagescmd"
	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/hack/testenv/tuftest"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook/imageverify"
)

// TestImagesVerifyAndValidateVerifyImages: podguard images verify and
// validate --verify-images read the registry (in process, over TLS) with
// the webhook's verifier and agree on the same images: a signed tag and
// digest verify, an unsigned digest does not; without --verify-images,
// validate notes the images as not verified and denies nothing for it.
func TestImagesVerifyAndValidateVerifyImages(t *testing.T) {
	reg := testenv.StartRegistry(t)
	key := sigtest.NewSigner(t)
	d := reg.PushRandom(t, "team/app:1.0")
	sigtest.SignBundle(t, reg, key, "team/app", d, sigtest.Statement(reg.Host+"/team/app", d, sigtest.CosignSignPredicate))
	signedTag, signedDigest := reg.Host+"/team/app:1.0", reg.Host+"/team/app@"+d.String()
	unsigned := reg.Host + "/team/app@" + reg.PushRandom(t, "team/app:2.0").String()
	uncovered := reg.Host + "/other/app@" + reg.PushRandom(t, "other/app:1").String()

	dir := t.TempDir()
	ps := rules.ImageSignaturesParams{Trust: []rules.ImageTrust{{Images: []string{reg.Host + "/team/*"},
		Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: key.PEM}}}}}}
	policy := write(t, dir, "policy.yaml", testenv.ImageSignaturesPolicy(t, ps))

	viaImages := map[string]bool{}
	for _, img := range []string{signedTag, signedDigest, unsigned, uncovered} {
		r := podguard(t, "", "images", "verify", img, "--policy", policy, "--registry-ca-file", reg.CAFile, "-o", "json")
		var rep imagescmd.Report
		if err := json.Unmarshal([]byte(r.out), &rep); err != nil || len(rep.Images) != 1 {
			t.Fatalf("images verify %s: exit %d, %v\n%s%s", img, r.code, err, r.out, r.err)
		}
		viaImages[img] = r.code == 0
		if img != uncovered && (len(rep.Images[0].Verdicts) != 1 || rep.Images[0].Digest == "") {
			t.Errorf("images verify %s: %+v", img, rep.Images[0])
		}
		// What the registry holds, listed: the signed digest's one bundle,
		// verified by the release key; nothing for the others.
		found := rep.Images[0].Found
		switch {
		case found == nil:
			t.Errorf("images verify %s: nothing listed (%s)", img, rep.Images[0].FoundError)
		case img == signedTag || img == signedDigest:
			if len(found) != 1 || found[0].Format != imageverify.FormatBundle || found[0].Kind != imageverify.KindSignature ||
				found[0].Signer != "a key" || strings.Join(found[0].VerifiedBy, ",") != "release" {
				t.Errorf("images verify %s: found %+v, want one bundle signature verified by release", img, found)
			}
		case len(found) != 0:
			t.Errorf("images verify %s: found %+v, want none", img, found)
		}
	}
	if !viaImages[signedTag] || !viaImages[signedDigest] || viaImages[unsigned] || !viaImages[uncovered] {
		t.Errorf("images verify: %v", viaImages)
	}
	text := podguard(t, "", "images", "verify", signedTag, unsigned, "--policy", policy, "--registry-ca-file", reg.CAFile)
	if text.code != 1 || !strings.Contains(text.out, `verified, signed by "release"`) || !strings.Contains(text.out, "unsigned") || !strings.Contains(text.out, d.String()) ||
		!strings.Contains(text.out, `signature (sigstore-bundle), by a key: verified by ["release"]`) || !strings.Contains(text.out, "Found:   no signature or attestation") {
		t.Errorf("images verify, text: exit %d\n%s%s", text.code, text.out, text.err)
	}

	for _, img := range []string{signedTag, signedDigest, unsigned, uncovered} {
		pod := write(t, dir, "pod.yaml", strings.Replace(compliantPod, "image: registry.example/c:1", "image: "+img, 1))
		v := podguard(t, "", "validate", "-f", pod, "--policy", policy, "--verify-images", "--registry-ca-file", reg.CAFile)
		if allowed := v.code == 0; allowed != viaImages[img] {
			t.Errorf("%s: validate --verify-images allowed=%v, images verify %v\n%s%s", img, allowed, viaImages[img], v.out, v.err)
		}
		offline := podguard(t, "", "validate", "-f", pod, "--policy", policy)
		if offline.code != 0 || (img != uncovered && !strings.Contains(offline.out, "not verified here")) {
			t.Errorf("%s: validate offline: exit %d\n%s%s", img, offline.code, offline.out, offline.err)
		}
	}
	check := podguard(t, "", "policy", "check", "-f", policy)
	if check.code != 0 || !strings.Contains(check.out, "images "+reg.Host+`/team/*: a signature by any of "release" (key)`) {
		t.Errorf("policy check does not say what imageSignatures enforces: exit %d\n%s%s", check.code, check.out, check.err)
	}
	// A scan attestation, as images verify prints it.
	scanned := reg.PushRandom(t, "team/scanned:1")
	sigtest.SignBundle(t, reg, key, "team/scanned", scanned, sigtest.VulnStatement(reg.Host+"/team/scanned", scanned, time.Now(), map[string]string{"CVE-2026-0300": "HIGH"}))
	vs := rules.ImageVulnerabilitiesParams{Scans: []rules.ImageScan{{Images: []string{reg.Host + "/team/*"},
		Authorities: []rules.Authority{{Name: "scanner", Key: &rules.KeyAuthority{PEM: key.PEM}}}}}}
	b, err := yaml.Marshal(map[string]any{"apiVersion": "podguard.dev/v1alpha1", "kind": "Policy", "rules": map[string]any{"imageVulnerabilities": vs}})
	if err != nil {
		t.Fatal(err)
	}
	vulnPolicy := write(t, dir, "vuln-policy.yaml", string(b))
	sr := podguard(t, "", "images", "verify", reg.Host+"/team/scanned:1", "--policy", vulnPolicy, "--registry-ca-file", reg.CAFile)
	if sr.code != 0 || !strings.Contains(sr.out, "CVE-2026-0300 high") {
		t.Errorf("images verify of a scanned image: exit %d\n%s%s", sr.code, sr.out, sr.err)
	}
	if ur := podguard(t, "", "images", "verify", signedDigest, "--policy", vulnPolicy, "--registry-ca-file", reg.CAFile); ur.code != 1 || !strings.Contains(ur.out, "unsigned") {
		t.Errorf("images verify of an image without a scan: exit %d\n%s%s", ur.code, ur.out, ur.err)
	}

	if bad := podguard(t, "", "images", "verify", "UPPER/Case:x", "--policy", policy); bad.code != 2 {
		t.Errorf("a bad reference: exit %d\n%s", bad.code, bad.err)
	}
}

// TestImagesVerifyTrustedRootFromTUF: a keyless authority whose trusted
// root comes from a TUF repository (over TLS, its CA in
// --registry-ca-file) verifies as one given inline; offline, --cache-dir
// holds the repository's verified metadata as it holds verdicts; a
// repository rotated to another Sigstore's root no longer vouches for the
// old signer; a repository podguard cannot reach is an error naming it.
func TestImagesVerifyTrustedRootFromTUF(t *testing.T) {
	reg := testenv.StartRegistry(t)
	const issuer, subject = "https://token.actions.githubusercontent.com", "https://github.com/example/app/.github/workflows/release.yaml@refs/heads/main"
	sigstore := sigtest.NewSigstore(t)
	d := reg.PushRandom(t, "team/app:1")
	sigtest.SignKeyless(t, reg, sigstore, subject, issuer, "team/app", d, sigtest.Statement(reg.Host+"/team/app", d, sigtest.CosignSignPredicate))
	image := reg.Host + "/team/app@" + d.String()
	repo := tuftest.Start(t, []byte(sigstore.TrustedRootJSON(t)))

	dir := t.TempDir()
	ps := rules.ImageSignaturesParams{Trust: []rules.ImageTrust{{Images: []string{reg.Host + "/team/*"},
		Authorities: []rules.Authority{{Name: "ci", Keyless: &rules.KeylessAuthority{Issuer: issuer, Subject: subject,
			TUF: &rules.TUFSource{URL: repo.URL, Root: string(repo.Root)}}}}}}}
	policy := write(t, dir, "policy.yaml", testenv.ImageSignaturesPolicy(t, ps))
	regCA, err := os.ReadFile(reg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	tufCA, err := os.ReadFile(repo.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cas := write(t, dir, "cas.pem", string(regCA)+string(tufCA))

	verify := func(args ...string) run {
		t.Helper()
		return podguard(t, "", append([]string{"images", "verify", image, "--policy", policy, "--registry-ca-file", cas}, args...)...)
	}
	cache := t.TempDir()
	if r := verify("--cache-dir", cache); r.code != 0 || !strings.Contains(r.out, `verified, signed by "ci"`) {
		t.Fatalf("trusted root from TUF: exit %d\n%s%s", r.code, r.out, r.err)
	}
	repo.SetDown(true)
	if r := verify("--cache-dir", cache, "--offline"); r.code != 0 || !strings.Contains(r.out, `signed by "ci"`) {
		t.Errorf("offline, from --cache-dir: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := verify(); r.code != 2 || !strings.Contains(r.err, "TUF repository "+repo.URL) {
		t.Errorf("the repository down, no cache: exit %d, want 2 naming it\n%s%s", r.code, r.out, r.err)
	}
	repo.SetDown(false)
	repo.SetTarget(t, []byte(sigtest.NewSigstore(t).TrustedRootJSON(t)))
	if r := verify(); r.code != 1 || !strings.Contains(r.out, "unsigned") {
		t.Errorf("the repository rotated to another Sigstore: exit %d, want 1 (unsigned)\n%s%s", r.code, r.out, r.err)
	}
}
