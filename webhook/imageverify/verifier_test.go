package imageverify_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook/imageverify"
)

const (
	issuer  = "https://token.actions.githubusercontent.com"
	subject = "https://github.com/example/app/.github/workflows/release.yaml@refs/heads/main"
)

type fixture struct {
	reg      *testenv.Registry
	verifier *imageverify.Verifier
	now      time.Time
}

func newFixture(t *testing.T) *fixture {
	reg := testenv.StartRegistry(t)
	pool := x509.NewCertPool()
	pool.AddCert(reg.Certificate())
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	f := &fixture{reg: reg, verifier: imageverify.New(tr, logr.Discard()), now: time.Now()}
	f.verifier.Now = func() time.Time { return f.now }
	return f
}

// verify judges one reference (repo:tag@digest under the registry) against
// one trust entry covering everything.
func (f *fixture) verify(t *testing.T, ref string, tr rules.ImageTrust, stale string) imagetrust.Verdict {
	t.Helper()
	tr.Images = []string{"*"}
	ps := &rules.ImageSignaturesParams{Trust: []rules.ImageTrust{tr}, VerdictCache: rules.VerdictCache{StaleIfError: stale}}
	ps.Default()
	if errs := ps.Validate(nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	full := f.reg.Host + "/" + ref
	v, ok := f.verifier.Verify(ctx, ps, []string{full}, nil)[imagetrust.Key{Ref: full, Trust: 0}]
	if !ok {
		t.Fatalf("%s: no verdict", ref)
	}
	return v
}

func keyTrust(signers ...*sigtest.Signer) rules.ImageTrust {
	var as []rules.Authority
	for i, s := range signers {
		as = append(as, rules.Authority{Name: string(rune('a' + i)), Key: &rules.KeyAuthority{PEM: s.PEM}})
	}
	return rules.ImageTrust{Authorities: as}
}

func keylessTrust(t *testing.T, vs *sigtest.Sigstore, subj, subjRE string) rules.ImageTrust {
	return rules.ImageTrust{Authorities: []rules.Authority{{Name: "ci", Keyless: &rules.KeylessAuthority{
		Issuer: issuer, Subject: subj, SubjectRegExp: subjRE, TrustedRoot: vs.TrustedRootJSON(t)}}}}
}

// ignoringSCT is tr with ignoreSCT set on its keyless authorities.
func ignoringSCT(tr rules.ImageTrust) rules.ImageTrust {
	for i := range tr.Authorities {
		if k := tr.Authorities[i].Keyless; k != nil {
			c := *k
			c.IgnoreSCT = true
			tr.Authorities[i].Keyless = &c
		}
	}
	return tr
}

func want(t *testing.T, what string, v imagetrust.Verdict, status imagetrust.Status, detail string) {
	t.Helper()
	if v.Status != status || !strings.Contains(v.Detail, detail) {
		t.Errorf("%s: got %s (%s), want %s with %q", what, v.Status, v.Detail, status, detail)
	}
}

func TestKeySignatures(t *testing.T) {
	f := newFixture(t)
	right, wrong := sigtest.NewSigner(t), sigtest.NewSigner(t)
	repo := f.reg.Host + "/team/app"

	legacy := f.reg.PushRandom(t, "team/app:legacy")
	sigtest.Sign(t, f.reg, right, "team/app", legacy)
	bundled := f.reg.PushRandom(t, "team/app:bundle")
	sigtest.SignBundle(t, f.reg, right, "team/app", bundled, sigtest.Statement(repo, bundled, sigtest.CosignSignPredicate))
	unsigned := f.reg.PushRandom(t, "team/app:unsigned")
	// A legacy signature by the right key of another digest, copied under
	// this digest's .sig tag.
	copied := f.reg.PushRandom(t, "team/app:copied")
	sigtest.SignLegacy(t, f.reg, right, "team/app", copied, sigtest.SimpleSigningPayload(repo, legacy))
	// A bundle by the right key that is an attestation, not a signature.
	attested := f.reg.PushRandom(t, "team/app:attested")
	sigtest.SignBundle(t, f.reg, right, "team/app", attested, sigtest.Statement(repo, attested, sigtest.SLSAPredicate))
	// A bundle whose statement names another digest.
	misnamed := f.reg.PushRandom(t, "team/app:misnamed")
	sigtest.SignBundle(t, f.reg, right, "team/app", misnamed, sigtest.Statement(repo, legacy, sigtest.CosignSignPredicate))

	at := func(tag string, d v1.Hash) string { return "team/app:" + tag + "@" + d.String() }
	want(t, "legacy, right key", f.verify(t, at("legacy", legacy), keyTrust(right), ""), imagetrust.Verified, "")
	want(t, "bundle, right key", f.verify(t, at("bundle", bundled), keyTrust(right), ""), imagetrust.Verified, "")
	want(t, "legacy, wrong key", f.verify(t, at("legacy", legacy), keyTrust(wrong), ""), imagetrust.Unsigned, "legacy signature")
	want(t, "bundle, wrong key", f.verify(t, at("bundle", bundled), keyTrust(wrong), ""), imagetrust.Unsigned, "bundle")
	want(t, "unsigned", f.verify(t, at("unsigned", unsigned), keyTrust(right), ""), imagetrust.Unsigned, "no signature found")
	want(t, "a signature of another digest", f.verify(t, at("copied", copied), keyTrust(right), ""), imagetrust.Unsigned, "signs "+legacy.String())
	want(t, "an attestation", f.verify(t, at("attested", attested), keyTrust(right), ""), imagetrust.Unsigned, "an attestation")
	want(t, "a statement of another digest", f.verify(t, at("misnamed", misnamed), keyTrust(right), ""), imagetrust.Unsigned, "bundle")

	// require: any and all.
	anyOf := keyTrust(wrong, right)
	want(t, "any of wrong, right", f.verify(t, at("legacy", legacy), anyOf, ""), imagetrust.Verified, "")
	allOf := keyTrust(wrong, right)
	allOf.Require = rules.RequireAll
	want(t, "all of wrong, right", f.verify(t, at("legacy", legacy), allOf, ""), imagetrust.Unsigned, "a: ")
	sigtest.Sign(t, f.reg, wrong, "team/app", legacy)
	f.now = f.now.Add(time.Minute) // past the negative cache
	if v := f.verify(t, at("legacy", legacy), allOf, ""); v.Status != imagetrust.Verified || len(v.Signers) != 2 {
		t.Errorf("all of wrong, right, both signed: %+v", v)
	}
}

func TestTamperedManifest(t *testing.T) {
	f := newFixture(t)
	s := sigtest.NewSigner(t)
	repo := f.reg.Host + "/team/app"
	d := f.reg.PushRandom(t, "team/app:1")
	sigtest.Sign(t, f.reg, s, "team/app", d)
	sigtest.SignBundle(t, f.reg, s, "team/app", d, sigtest.Statement(repo, d, sigtest.CosignSignPredicate))
	// The tag now names other content: its digest differs, and the
	// signatures of the original do not cover it.
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tampered := f.reg.Push(t, "team/app:1", img)
	want(t, "pinned digest after the tag moved", f.verify(t, "team/app:1@"+d.String(), keyTrust(s), ""), imagetrust.Verified, "")
	want(t, "the tag's new digest", f.verify(t, "team/app:1@"+tampered.String(), keyTrust(s), ""), imagetrust.Unsigned, "no signature found")
}

func TestMultiArchIndexVerifiedByItsDigest(t *testing.T) {
	f := newFixture(t)
	s := sigtest.NewSigner(t)
	repo := f.reg.Host + "/team/multi"
	idx, err := random.Index(128, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	d := f.reg.Push(t, "team/multi:1", idx)
	sigtest.SignBundle(t, f.reg, s, "team/multi", d, sigtest.Statement(repo, d, sigtest.CosignSignPredicate))
	want(t, "index", f.verify(t, "team/multi:1@"+d.String(), keyTrust(s), ""), imagetrust.Verified, "")
	// A platform's manifest is not the index: its own digest is unsigned.
	im, _ := idx.IndexManifest()
	child := im.Manifests[0].Digest
	want(t, "a platform manifest", f.verify(t, "team/multi@"+child.String(), keyTrust(s), ""), imagetrust.Unsigned, "no signature found")
}

func TestKeylessBundles(t *testing.T) {
	f := newFixture(t)
	vs := sigtest.NewSigstore(t)
	other := sigtest.NewSigstore(t)
	repo := f.reg.Host + "/team/app"
	d := f.reg.PushRandom(t, "team/app:keyless")
	sigtest.SignKeyless(t, f.reg, vs, subject, issuer, "team/app", d, sigtest.Statement(repo, d, sigtest.CosignSignPredicate))
	ref := "team/app:keyless@" + d.String()
	want(t, "right issuer and subject", f.verify(t, ref, keylessTrust(t, vs, subject, ""), ""), imagetrust.Verified, "")
	want(t, "subject by regular expression", f.verify(t, ref, keylessTrust(t, vs, "", `^https://github\.com/example/app/`), ""), imagetrust.Verified, "")
	want(t, "right issuer, wrong subject", f.verify(t, ref, keylessTrust(t, vs, "https://github.com/example/other/.github/workflows/release.yaml@refs/heads/main", ""), ""), imagetrust.Unsigned, "bundle")
	want(t, "untrusted root", f.verify(t, ref, keylessTrust(t, other, subject, ""), ""), imagetrust.Unsigned, "bundle")

	att := f.reg.PushRandom(t, "team/app:attested")
	sigtest.SignKeyless(t, f.reg, vs, subject, issuer, "team/app", att, sigtest.Statement(repo, att, sigtest.SLSAPredicate))
	want(t, "keyless attestation", f.verify(t, "team/app:attested@"+att.String(), keylessTrust(t, vs, subject, ""), ""), imagetrust.Unsigned, "an attestation")

	// A certificate without an SCT (a Fulcio outside certificate
	// transparency) counts only under ignoreSCT.
	noSCT := f.reg.PushRandom(t, "team/app:nosct")
	sigtest.SignKeyless(t, f.reg, vs.WithoutSCT(), subject, issuer, "team/app", noSCT, sigtest.Statement(repo, noSCT, sigtest.CosignSignPredicate))
	want(t, "no SCT", f.verify(t, "team/app:nosct@"+noSCT.String(), keylessTrust(t, vs, subject, ""), ""), imagetrust.Unsigned, "signed certificate timestamp")
	want(t, "no SCT, ignoreSCT", f.verify(t, "team/app:nosct@"+noSCT.String(), ignoringSCT(keylessTrust(t, vs, subject, "")), ""), imagetrust.Verified, "")
	// An SCT of a CT log the trusted root does not name counts for nothing.
	otherSCT := f.reg.PushRandom(t, "team/app:othersct")
	sigtest.SignKeyless(t, f.reg, vs.WithCTLogOf(other), subject, issuer, "team/app", otherSCT, sigtest.Statement(repo, otherSCT, sigtest.CosignSignPredicate))
	want(t, "an SCT of another log", f.verify(t, "team/app:othersct@"+otherSCT.String(), keylessTrust(t, vs, subject, ""), ""), imagetrust.Unsigned, "signed certificate timestamp")

	// A key's legacy signature is not a keyless identity's.
	legacy := f.reg.PushRandom(t, "team/app:legacy")
	sigtest.Sign(t, f.reg, sigtest.NewSigner(t), "team/app", legacy)
	want(t, "a key's legacy signature under a keyless authority", f.verify(t, "team/app:legacy@"+legacy.String(), keylessTrust(t, vs, subject, ""), ""), imagetrust.Unsigned, "no certificate")
}

// TestKeylessLegacySignatures: cosign's legacy format signed keyless (a
// Fulcio certificate and a Rekor entry in the layer's annotations)
// verifies as a bundle does, and fails where a bundle would.
func TestKeylessLegacySignatures(t *testing.T) {
	f := newFixture(t)
	vs := sigtest.NewSigstore(t)
	other := sigtest.NewSigstore(t)
	repo := f.reg.Host + "/team/app"
	d := f.reg.PushRandom(t, "team/app:legacy")
	sigtest.SignLegacyKeyless(t, f.reg, vs, subject, issuer, "team/app", d, sigtest.SimpleSigningPayload(repo, d))
	ref := "team/app:legacy@" + d.String()
	want(t, "right issuer and subject", f.verify(t, ref, keylessTrust(t, vs, subject, ""), ""), imagetrust.Verified, "")
	want(t, "subject by regular expression", f.verify(t, ref, keylessTrust(t, vs, "", `^https://github\.com/example/app/`), ""), imagetrust.Verified, "")
	want(t, "right issuer, wrong subject", f.verify(t, ref, keylessTrust(t, vs, "https://github.com/example/other/.github/workflows/release.yaml@refs/heads/main", ""), ""), imagetrust.Unsigned, "legacy signature")
	want(t, "untrusted root", f.verify(t, ref, keylessTrust(t, other, subject, ""), ""), imagetrust.Unsigned, "legacy signature")
	want(t, "a key authority", f.verify(t, ref, keyTrust(sigtest.NewSigner(t)), ""), imagetrust.Unsigned, "legacy signature")

	// The signature of another digest, copied under this digest's tag:
	// everything verifies but the payload, which names the other image.
	copied := f.reg.PushRandom(t, "team/app:copied")
	sigtest.SignLegacyKeyless(t, f.reg, vs, subject, issuer, "team/app", copied, sigtest.SimpleSigningPayload(repo, d))
	want(t, "a signature of another digest", f.verify(t, "team/app:copied@"+copied.String(), keylessTrust(t, vs, subject, ""), ""), imagetrust.Unsigned, "signs "+d.String())

	noSCT := f.reg.PushRandom(t, "team/app:nosct")
	sigtest.SignLegacyKeyless(t, f.reg, vs.WithoutSCT(), subject, issuer, "team/app", noSCT, sigtest.SimpleSigningPayload(repo, noSCT))
	want(t, "no SCT", f.verify(t, "team/app:nosct@"+noSCT.String(), keylessTrust(t, vs, subject, ""), ""), imagetrust.Unsigned, "signed certificate timestamp")
	want(t, "no SCT, ignoreSCT", f.verify(t, "team/app:nosct@"+noSCT.String(), ignoringSCT(keylessTrust(t, vs, subject, "")), ""), imagetrust.Verified, "")

	// Without its Rekor entry a keyless signature proves nothing about when
	// the short-lived certificate signed.
	bare := f.reg.PushRandom(t, "team/app:bare")
	sigtest.SignLegacyKeyless(t, f.reg, vs, subject, issuer, "team/app", bare, sigtest.SimpleSigningPayload(repo, bare))
	sigtest.EditLegacyAnnotations(t, f.reg, "team/app", bare, func(a map[string]string) { delete(a, "dev.sigstore.cosign/bundle") })
	want(t, "no Rekor entry", f.verify(t, "team/app:bare@"+bare.String(), keylessTrust(t, vs, subject, ""), ""), imagetrust.Unsigned, "no transparency log entry")

	// A Rekor entry of another signature: its signed entry timestamp
	// verifies, but its body names another signature and certificate.
	swapped := f.reg.PushRandom(t, "team/app:swapped")
	sigtest.SignLegacyKeyless(t, f.reg, vs, subject, issuer, "team/app", swapped, sigtest.SimpleSigningPayload(repo, swapped))
	rekorOfD := sigtest.LegacyAnnotations(t, f.reg, "team/app", d)["dev.sigstore.cosign/bundle"]
	sigtest.EditLegacyAnnotations(t, f.reg, "team/app", swapped, func(a map[string]string) { a["dev.sigstore.cosign/bundle"] = rekorOfD })
	want(t, "another signature's Rekor entry", f.verify(t, "team/app:swapped@"+swapped.String(), keylessTrust(t, vs, subject, ""), ""), imagetrust.Unsigned, "does not match")
}

// TestRegistryOutage: a digest verified within staleIfError stays
// admitted (stale) while the registry cannot be reached; after it, and for
// a digest never verified, the verdict says unreachable, not unsigned;
// 429 answers count as unreachable too.
func TestRegistryOutage(t *testing.T) {
	f := newFixture(t)
	s := sigtest.NewSigner(t)
	d := f.reg.PushRandom(t, "team/app:1")
	sigtest.Sign(t, f.reg, s, "team/app", d)
	never := f.reg.PushRandom(t, "team/app:2")
	sigtest.Sign(t, f.reg, s, "team/app", never)
	ref, neverRef := "team/app:1@"+d.String(), "team/app:2@"+never.String()
	want(t, "before the outage", f.verify(t, ref, keyTrust(s), "1h"), imagetrust.Verified, "")

	f.reg.FailWith(http.StatusTooManyRequests)
	verifiedAt := f.now
	f.now = f.now.Add(11 * time.Minute) // past verdictTTL: the registry is asked again
	v := f.verify(t, ref, keyTrust(s), "1h")
	want(t, "429, verified 11 minutes ago", v, imagetrust.Stale, "429")
	if !v.VerifiedAt.Equal(verifiedAt) {
		t.Errorf("stale verdict admitted on %s, want the verification of %s", v.VerifiedAt, verifiedAt)
	}
	want(t, "429, never verified", f.verify(t, neverRef, keyTrust(s), "1h"), imagetrust.Unreachable, "429")
	// Within errorTTL the failure is remembered: the next admissions get
	// the same answers at once, without asking the registry again.
	hits := 0
	f.verifier.Observe = func(_ imagetrust.Status, cached bool) {
		if cached {
			hits++
		}
	}
	want(t, "429 again, verified before", f.verify(t, ref, keyTrust(s), "1h"), imagetrust.Stale, "429")
	want(t, "429 again, never verified", f.verify(t, neverRef, keyTrust(s), "1h"), imagetrust.Unreachable, "429")
	if hits != 2 {
		t.Errorf("%d of 2 verdicts during the outage came from the remembered failure", hits)
	}
	f.verifier.Observe = nil
	f.reg.FailWith(0)
	f.now = f.now.Add(11 * time.Second) // past errorTTL: the registry is asked again

	f.reg.Close() // the registry stops
	want(t, "down, verified 11 minutes ago", f.verify(t, ref, keyTrust(s), "1h"), imagetrust.Stale, "")
	f.now = f.now.Add(time.Hour)
	want(t, "down, verified over staleIfError ago", f.verify(t, ref, keyTrust(s), "1h"), imagetrust.Unreachable, "")
	want(t, "down, never verified", f.verify(t, neverRef, keyTrust(s), "1h"), imagetrust.Unreachable, "")
}

// TestSlowRegistryWithinBudget: a registry that answers after 5 s costs a
// request no more than its budget, and gives no verdict rather than a
// wrong one.
func TestSlowRegistryWithinBudget(t *testing.T) {
	f := newFixture(t)
	s := sigtest.NewSigner(t)
	d := f.reg.PushRandom(t, "team/app:1")
	f.reg.Delay(5 * time.Second)
	ps := &rules.ImageSignaturesParams{Trust: []rules.ImageTrust{keyTrust(s)}}
	ps.Trust[0].Images = []string{"*"}
	ps.Default()
	ref := f.reg.Host + "/team/app:1@" + d.String()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := f.verifier.Verify(ctx, ps, []string{ref}, nil)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Verify took %s with a 300ms budget", took)
	}
	if verdict, ok := got[imagetrust.Key{Ref: ref}]; ok && verdict.Status != imagetrust.Unreachable {
		t.Errorf("a slow registry gave %+v", verdict)
	}
	f.reg.Delay(0)
}

// TestConcurrentRequestsShareOneLookup: many requests for one digest read
// its signatures once.
func TestConcurrentRequestsShareOneLookup(t *testing.T) {
	f := newFixture(t)
	s := sigtest.NewSigner(t)
	d := f.reg.PushRandom(t, "team/app:1")
	sigtest.Sign(t, f.reg, s, "team/app", d)
	var misses, hits int
	f.verifier.Observe = func(_ imagetrust.Status, cached bool) {
		if cached {
			hits++
		} else {
			misses++
		}
	}
	for range 5 {
		want(t, "verified", f.verify(t, "team/app:1@"+d.String(), keyTrust(s), ""), imagetrust.Verified, "")
	}
	if misses != 1 || hits != 4 {
		t.Errorf("5 requests: %d lookups, %d cache hits; want 1 and 4", misses, hits)
	}
	if n := f.verifier.Len(); n != 1 {
		t.Errorf("%d cached verdicts, want 1", n)
	}
}

// TestScanAttestations: the newest vulnerability-scan attestation of the
// digest signed by an authority is found and its report read; one signed
// by another key, a signature, or an attestation of another predicate is
// not; the rule then judges age and severities (policies/rules' fixtures).
func TestScanAttestations(t *testing.T) {
	f := newFixture(t)
	scanner, other := sigtest.NewSigner(t), sigtest.NewSigner(t)
	repo := f.reg.Host + "/team/app"
	d := f.reg.PushRandom(t, "team/app:1")
	old, recent := time.Now().Add(-10*24*time.Hour).Truncate(time.Second), time.Now().Add(-time.Hour).Truncate(time.Second)
	sigtest.SignBundle(t, f.reg, scanner, "team/app", d, sigtest.VulnStatement(repo, d, old, map[string]string{"CVE-2026-0001": "CRITICAL"}))
	sigtest.SignBundle(t, f.reg, scanner, "team/app", d, sigtest.VulnStatement(repo, d, recent, map[string]string{"CVE-2026-0002": "HIGH", "CVE-2026-0003": "LOW"}))
	sigtest.SignBundle(t, f.reg, other, "team/app", d, sigtest.VulnStatement(repo, d, time.Now(), nil))
	sigtest.SignBundle(t, f.reg, scanner, "team/app", d, sigtest.Statement(repo, d, sigtest.CosignSignPredicate))
	unscanned := f.reg.PushRandom(t, "team/app:2")
	sigtest.SignBundle(t, f.reg, scanner, "team/app", unscanned, sigtest.Statement(repo, unscanned, sigtest.SLSAPredicate))

	scans := func(ref string, signer *sigtest.Signer) imagetrust.Verdict {
		t.Helper()
		ps := &rules.ImageVulnerabilitiesParams{Scans: []rules.ImageScan{{Images: []string{"*"},
			Authorities: []rules.Authority{{Name: "scanner", Key: &rules.KeyAuthority{PEM: signer.PEM}}}}}}
		ps.Default()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		full := f.reg.Host + "/" + ref
		return f.verifier.VerifyScans(ctx, ps, []string{full}, nil)[imagetrust.Key{Ref: full}]
	}
	v := scans("team/app:1@"+d.String(), scanner)
	if v.Status != imagetrust.Verified || v.Scan == nil || !v.Scan.FinishedAt.Equal(recent.UTC()) {
		t.Fatalf("the newest scan by the scanner key: %+v", v)
	}
	if got := v.Scan.Vulnerabilities; len(got) != 2 || got[0] != (imagetrust.Vulnerability{ID: "CVE-2026-0002", Severity: "high"}) {
		t.Errorf("findings: %+v", got)
	}
	if v := scans("team/app:2@"+unscanned.String(), scanner); v.Status != imagetrust.Unsigned || v.Scan != nil {
		t.Errorf("an image with a provenance attestation but no scan: %+v", v)
	}
	stranger := sigtest.NewSigner(t)
	if v := scans("team/app:1@"+d.String(), stranger); v.Status != imagetrust.Unsigned || !strings.Contains(v.Detail, "bundle") {
		t.Errorf("scans signed by other keys only: %+v", v)
	}

	// The registry stops: the last verified scan still counts, stale.
	f.reg.Close()
	f.now = f.now.Add(time.Hour)
	if v := scans("team/app:1@"+d.String(), scanner); v.Status != imagetrust.Stale || v.Scan == nil || len(v.Scan.Vulnerabilities) != 2 {
		t.Errorf("registry down, verified an hour ago: %+v", v)
	}
}

// TestCycloneDXScanAttestations: a CycloneDX BOM with vulnerabilities is
// a scan (worst rating per finding, VEX states that say "not affected"
// not counted); a BOM without them is an SBOM and never a clean scan; the
// newest scan counts whichever form it has.
func TestCycloneDXScanAttestations(t *testing.T) {
	f := newFixture(t)
	scanner := sigtest.NewSigner(t)
	repo := f.reg.Host + "/team/app"
	scans := func(d v1.Hash) imagetrust.Verdict {
		t.Helper()
		ps := &rules.ImageVulnerabilitiesParams{Scans: []rules.ImageScan{{Images: []string{"*"},
			Authorities: []rules.Authority{{Name: "scanner", Key: &rules.KeyAuthority{PEM: scanner.PEM}}}}}}
		ps.Default()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		full := repo + "@" + d.String()
		return f.verifier.VerifyScans(ctx, ps, []string{full}, nil)[imagetrust.Key{Ref: full}]
	}
	when := time.Now().Add(-time.Hour).Truncate(time.Second)

	scanned := f.reg.PushRandom(t, "team/app:scanned")
	sigtest.SignBundle(t, f.reg, scanner, "team/app", scanned, sigtest.CycloneDXStatement(repo, scanned, when, map[string]sigtest.CycloneDXFinding{
		"CVE-2026-0001": {Severities: []string{"critical"}},
		"CVE-2026-0002": {Severities: []string{"critical"}, State: "not_affected"},
		"CVE-2026-0003": {Severities: []string{"low", "high"}},
		"CVE-2026-0004": {Severities: []string{"high"}, State: "in_triage"},
	}))
	v := scans(scanned)
	if v.Status != imagetrust.Verified || v.Scan == nil || !v.Scan.FinishedAt.Equal(when.UTC()) || v.Scan.Scanner != "trivy 0.58.0" {
		t.Fatalf("a CycloneDX scan: %+v", v)
	}
	want := []imagetrust.Vulnerability{{ID: "CVE-2026-0001", Severity: "critical"}, {ID: "CVE-2026-0003", Severity: "high"}, {ID: "CVE-2026-0004", Severity: "high"}}
	if got := v.Scan.Vulnerabilities; !slices.Equal(got, want) || v.Scan.NotAffected != 1 {
		t.Errorf("findings %+v (%d not affected), want %+v (1 not affected)", got, v.Scan.NotAffected, want)
	}

	sbom := f.reg.PushRandom(t, "team/app:sbom")
	sigtest.SignBundle(t, f.reg, scanner, "team/app", sbom, sigtest.CycloneDXStatement(repo, sbom, when, nil))
	if v := scans(sbom); v.Status != imagetrust.Unsigned || v.Scan != nil || !strings.Contains(v.Detail, "an SBOM, not a vulnerability scan") {
		t.Errorf("an SBOM attested by the scanner's key: %+v", v)
	}

	undated := f.reg.PushRandom(t, "team/app:undated")
	sigtest.SignBundle(t, f.reg, scanner, "team/app", undated, sigtest.CycloneDXStatement(repo, undated, time.Time{}, map[string]sigtest.CycloneDXFinding{}))
	if v := scans(undated); v.Status != imagetrust.Unsigned || !strings.Contains(v.Detail, "no metadata.timestamp") {
		t.Errorf("a BOM without a timestamp: %+v", v)
	}

	both := f.reg.PushRandom(t, "team/app:both")
	sigtest.SignBundle(t, f.reg, scanner, "team/app", both, sigtest.VulnStatement(repo, both, when.Add(-time.Hour), map[string]string{"CVE-2026-0001": "CRITICAL"}))
	sigtest.SignBundle(t, f.reg, scanner, "team/app", both, sigtest.CycloneDXStatement(repo, both, when, map[string]sigtest.CycloneDXFinding{}))
	if v := scans(both); v.Status != imagetrust.Verified || v.Scan == nil || !v.Scan.FinishedAt.Equal(when.UTC()) || len(v.Scan.Vulnerabilities) != 0 {
		t.Errorf("the newer CycloneDX scan over an older cosign vuln one: %+v", v)
	}
}

// TestImageConfigsSavedAndLoaded: what an image's config declares (user,
// ports, volumes) is kept by Save and served by Load without a registry;
// a file of an older podguard, which kept users only, still gives them.
func TestImageConfigsSavedAndLoaded(t *testing.T) {
	f := newFixture(t)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.Config.User = "101"
	cf.Config.ExposedPorts = map[string]struct{}{"443/tcp": {}, "80/tcp": {}}
	cf.Config.Volumes = map[string]struct{}{"/var/cache/nginx": {}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := f.reg.Host + "/team/web@" + f.reg.Push(t, "team/web:1", img).String()
	want := imagetrust.ImageConfig{User: "101", ExposedPorts: []string{"443/tcp", "80/tcp"}, Volumes: []string{"/var/cache/nginx"}}
	if got := f.verifier.ImageConfigs(context.Background(), []string{ref}, nil)[ref]; !reflect.DeepEqual(got, want) {
		t.Fatalf("read from the registry: %+v, want %+v", got, want)
	}
	var saved bytes.Buffer
	if err := f.verifier.Save(&saved); err != nil {
		t.Fatal(err)
	}
	f.reg.Close()
	offline := imageverify.New(http.DefaultTransport, logr.Discard())
	if err := offline.Load(&saved); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if got := offline.ImageConfigs(ctx, []string{ref}, nil)[ref]; !reflect.DeepEqual(got, want) {
		t.Errorf("loaded: %+v, want %+v", got, want)
	}
	older := imageverify.New(http.DefaultTransport, logr.Discard())
	old := `{"version":1,"verdicts":{},"users":{"` + ref + `":"1001"}}`
	if err := older.Load(strings.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	if got := older.ImageConfigs(ctx, []string{ref}, nil)[ref]; !reflect.DeepEqual(got, imagetrust.ImageConfig{User: "1001"}) {
		t.Errorf("an older file's user: %+v", got)
	}
}
