package imageverify_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/notaryproject/notation-core-go/testhelper"

	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook/imageverify"
)

func certPEM(certs ...*x509.Certificate) string {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return string(out)
}

func notationTrust(ca *x509.Certificate, identities ...string) rules.ImageTrust {
	return rules.ImageTrust{Authorities: []rules.Authority{{Name: "notary", Notation: &rules.NotationAuthority{
		Certificates: certPEM(ca), TrustedIdentities: identities}}}}
}

// TestNotationSignatures: Notary Project signatures (JWS and COSE
// envelopes as OCI referrers, as notation sign stores them) verify by the
// CA and the identity the policy names, and nothing else does: a chain to
// another CA, an identity not listed, a signature naming another image's
// manifest copied next to this one, a notation signature for a cosign key
// authority or a cosign signature for a notation authority.
func TestNotationSignatures(t *testing.T) {
	f := newFixture(t)
	root, leaf := testhelper.GetRSARootCertificate(), testhelper.GetRSALeafCertificate()
	otherRoot, otherLeaf := testhelper.GetECRootCertificate(), testhelper.GetECLeafCertificate()
	leafSubject := "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=Notation Test RSA Leaf Cert"
	cosign := sigtest.NewSigner(t)

	jws := f.reg.PushRandom(t, "team/jws:1")
	sigtest.SignNotation(t, f.reg, "team/jws", jws, leaf.PrivateKey, []*x509.Certificate{leaf.Cert, root.Cert}, "application/jose+json", nil)
	cose := f.reg.PushRandom(t, "team/cose:1")
	sigtest.SignNotation(t, f.reg, "team/cose", cose, leaf.PrivateKey, []*x509.Certificate{leaf.Cert, root.Cert}, "application/cose", nil)
	other := f.reg.PushRandom(t, "team/other:1")
	sigtest.SignNotation(t, f.reg, "team/other", other, otherLeaf.PrivateKey, []*x509.Certificate{otherLeaf.Cert, otherRoot.Cert}, "application/jose+json", nil)
	// A signature of jws's manifest, attached to another image.
	jwsRef, err := name.ParseReference(f.reg.Host + "/team/jws@" + jws.String())
	if err != nil {
		t.Fatal(err)
	}
	jwsDesc, err := remote.Head(jwsRef, remote.WithTransport(f.reg.Client().Transport))
	if err != nil {
		t.Fatal(err)
	}
	copied := f.reg.PushRandom(t, "team/copied:1")
	sigtest.SignNotation(t, f.reg, "team/copied", copied, leaf.PrivateKey, []*x509.Certificate{leaf.Cert, root.Cert}, "application/jose+json", &v1.Descriptor{MediaType: jwsDesc.MediaType, Digest: jwsDesc.Digest, Size: jwsDesc.Size})
	cosigned := f.reg.PushRandom(t, "team/cosigned:1")
	sigtest.Sign(t, f.reg, cosign, "team/cosigned", cosigned)

	byCA := notationTrust(root.Cert, "*")
	want(t, "JWS, by the CA", f.verify(t, "team/jws@"+jws.String(), byCA, "24h"), imagetrust.Verified, "")
	want(t, "COSE, by the CA", f.verify(t, "team/cose@"+cose.String(), byCA, "24h"), imagetrust.Verified, "")
	want(t, "the named identity", f.verify(t, "team/jws@"+jws.String(), notationTrust(root.Cert, leafSubject), "24h"), imagetrust.Verified, "")
	want(t, "a tag, verified at its digest", f.verify(t, "team/jws:1@"+jws.String(), byCA, "24h"), imagetrust.Verified, "")

	want(t, "an identity not listed", f.verify(t, "team/jws@"+jws.String(), notationTrust(root.Cert, "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=someone else"), "24h"), imagetrust.Unsigned, "notation:")
	want(t, "a chain to another CA", f.verify(t, "team/other@"+other.String(), byCA, "24h"), imagetrust.Unsigned, "notation:")
	want(t, "a signature of another image copied here", f.verify(t, "team/copied@"+copied.String(), byCA, "24h"), imagetrust.Unsigned, "notation:")
	want(t, "a cosign signature, for a notation authority", f.verify(t, "team/cosigned@"+cosigned.String(), byCA, "24h"), imagetrust.Unsigned, "no notation signature")
	want(t, "a notation signature, for a cosign key", f.verify(t, "team/jws@"+jws.String(), keyTrust(cosign), "24h"), imagetrust.Unsigned, "no signature found")
	// Both kinds of signer, require: all, on an image signed by both.
	sigtest.Sign(t, f.reg, cosign, "team/jws", jws)
	both := rules.ImageTrust{Require: rules.RequireAll, Authorities: append(keyTrust(cosign).Authorities, byCA.Authorities...)}
	want(t, "a cosign key and a notation CA, both required", f.verify(t, "team/jws@"+jws.String(), both, "24h"), imagetrust.Verified, "")
	want(t, "a cosign key and a notation CA, one signed", f.verify(t, "team/cose@"+cose.String(), both, "24h"), imagetrust.Unsigned, "")
}

// TestInspect lists what a registry holds for a digest, one signature or
// attestation at a time, with who each names as its signer, when, and
// the authorities it verifies under: a key's legacy signature, a keyless
// legacy signature, a keyless bundle, a key's scan attestation, a notation
// signature, and one by a key no authority holds.
func TestInspect(t *testing.T) {
	f := newFixture(t)
	vs := sigtest.NewSigstore(t)
	root, leaf := testhelper.GetRSARootCertificate(), testhelper.GetRSALeafCertificate()
	release, scanner, stranger := sigtest.NewSigner(t), sigtest.NewSigner(t), sigtest.NewSigner(t)
	repo := f.reg.Host + "/team/app"
	d := f.reg.PushRandom(t, "team/app:1")
	sigtest.Sign(t, f.reg, release, "team/app", d)
	sigtest.SignLegacyKeyless(t, f.reg, vs, subject, issuer, "team/app", d, sigtest.SimpleSigningPayload(repo, d))
	sigtest.SignKeyless(t, f.reg, vs, subject, issuer, "team/app", d, sigtest.Statement(repo, d, sigtest.CosignSignPredicate))
	sigtest.SignBundle(t, f.reg, scanner, "team/app", d, sigtest.VulnStatement(repo, d, time.Now(), nil))
	sigtest.SignBundle(t, f.reg, stranger, "team/app", d, sigtest.Statement(repo, d, sigtest.CosignSignPredicate))
	sigtest.SignNotation(t, f.reg, "team/app", d, leaf.PrivateKey, []*x509.Certificate{leaf.Cert, root.Cert}, "application/jose+json", nil)

	authorities := []rules.Authority{
		{Name: "release", Key: &rules.KeyAuthority{PEM: release.PEM}},
		{Name: "ci", Keyless: &rules.KeylessAuthority{Issuer: issuer, Subject: subject, TrustedRoot: vs.TrustedRootJSON(t)}},
		{Name: "scanner", Key: &rules.KeyAuthority{PEM: scanner.PEM}},
		{Name: "notary", Notation: &rules.NotationAuthority{Certificates: certPEM(root.Cert), TrustedIdentities: []string{"*"}}},
	}
	found, err := f.verifier.Inspect(context.Background(), repo+"@"+d.String(), nil, authorities)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ format, kind, predicate, signer, by string }
	var got []row
	for _, x := range found {
		got = append(got, row{x.Format, x.Kind, x.PredicateType, x.Signer, strings.Join(x.VerifiedBy, ",")})
		timed := x.Format == imageverify.FormatNotation || x.Signer != "a key"
		if timed != (x.SignedAt != nil) {
			t.Errorf("%+v: signedAt %v", x, x.SignedAt)
		}
	}
	fulcio := subject + " (issuer " + issuer + ")"
	want := []row{
		{imageverify.FormatCosign, imageverify.KindSignature, "", "a key", "release"},
		{imageverify.FormatCosign, imageverify.KindSignature, "", fulcio, "ci"},
		{imageverify.FormatBundle, imageverify.KindSignature, "", fulcio, "ci"},
		{imageverify.FormatBundle, imageverify.KindSignature, "", "a key", ""},
		{imageverify.FormatNotation, imageverify.KindSignature, "", leaf.Cert.Subject.String(), "notary"},
		{imageverify.FormatBundle, imageverify.KindAttestation, sigtest.VulnPredicate, "a key", "scanner"},
	}
	// In the registry's order of referrers, signatures first: compared
	// as sets.
	byText := func(a, b row) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }
	if !slices.Equal(got[len(got)-1:], want[len(want)-1:]) {
		t.Errorf("the attestation is not listed last: %+v", got)
	}
	slices.SortFunc(got, byText)
	slices.SortFunc(want, byText)
	if !slices.Equal(got, want) {
		t.Errorf("found:\n got  %+v\n want %+v", got, want)
	}
}
