package imageverify

// What a registry holds for a digest, listed one signature or attestation
// at a time for podguard images verify: the `docker trust inspect` of a
// user of the hardening write-up. Verdicts (Verify, VerifyScans) say
// whether an entry of the policy is satisfied; this says what is there,
// who each one claims signed it, when, and under which of the policy's
// authorities it verifies.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"slices"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	notationsignature "github.com/notaryproject/notation-core-go/signature"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"

	"podguard.dev/podguard/policies/rules"
)

// The formats Found names.
const (
	FormatCosign   = "cosign"          // the legacy sha256-<hex>.sig tag
	FormatBundle   = "sigstore-bundle" // a Sigstore bundle referrer
	FormatNotation = "notation"        // a Notary Project envelope referrer
)

// The kinds Found names.
const (
	KindSignature   = "signature"
	KindAttestation = "attestation"
)

// Found is one signature or attestation stored for an image digest.
// Signer and SignedAt are what it claims; VerifiedBy is what podguard
// verified.
type Found struct {
	// Format is cosign (the legacy .sig tag), sigstore-bundle or notation.
	Format string `json:"format"`
	// Kind is signature or attestation (of PredicateType: a scan, an
	// SBOM, provenance), which signs a statement about the image, not the
	// image.
	Kind          string `json:"kind"`
	PredicateType string `json:"predicateType,omitempty"`
	// Signer is who it names as its signer: a certificate's identity
	// (with its OIDC issuer for a Fulcio certificate), or "a key" for a
	// key's signature, which names no one (VerifiedBy says whose key).
	Signer string `json:"signer"`
	// SignedAt is when: the transparency log's integrated time, or the
	// notation envelope's signing time; absent when nothing says.
	SignedAt *time.Time `json:"signedAt,omitempty"`
	// VerifiedBy lists the given authorities under which it verifies;
	// empty when none does.
	VerifiedBy []string `json:"verifiedBy"`
}

// Inspect lists what the registry holds for ref at its digest (its own,
// or digests' resolution of its tag, as Verify takes them): each
// signature and attestation read, as Verify reads them, checked against
// each of authorities. An error means the registry could not be asked.
func (v *Verifier) Inspect(ctx context.Context, ref string, digests map[string]string, authorities []rules.Authority) ([]Found, error) {
	d, err := digestOf(ref, digests)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	set, err := v.fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	// verifiedBy names the authorities under which ok holds, each once.
	verifiedBy := func(ok func(a *authority) bool) []string {
		names := []string{}
		for _, pa := range authorities {
			a, err := v.authority(pa)
			if err == nil && !slices.Contains(names, pa.Name) && ok(a) {
				names = append(names, pa.Name)
			}
		}
		return names
	}
	out := []Found{}
	for _, s := range set.legacy {
		f := Found{Format: FormatCosign, Kind: KindSignature, Signer: "a key"}
		if s.cert != "" {
			f.Signer = certSigner(s.cert)
			f.SignedAt = legacyLoggedAt(s.rekor)
		}
		one := &signatureSet{legacy: []legacySignature{s}, repo: set.repo}
		f.VerifiedBy = verifiedBy(func(a *authority) bool { ok, _ := a.check(one, h); return ok })
		out = append(out, f)
	}
	for _, b := range set.bundles {
		f := Found{Format: FormatBundle, Kind: KindSignature, Signer: "a key"}
		if env, err := b.Envelope(); err == nil {
			if st, err := env.Statement(); err == nil && st.GetPredicateType() != cosignSignPredicate {
				f.Kind, f.PredicateType = KindAttestation, st.GetPredicateType()
			}
		}
		if vc, err := b.VerificationContent(); err == nil && vc.Certificate() != nil {
			f.Signer = summarize(vc.Certificate())
		}
		if entries, err := b.TlogEntries(); err == nil && len(entries) > 0 {
			at := entries[0].IntegratedTime().UTC()
			f.SignedAt = &at
		}
		f.VerifiedBy = verifiedBy(func(a *authority) bool {
			if a.notation != nil {
				return false
			}
			_, err := a.verifyBundle(b, h)
			return err == nil
		})
		out = append(out, f)
	}
	for _, s := range set.notation {
		f := Found{Format: FormatNotation, Kind: KindSignature, Signer: "unreadable envelope"}
		if env, err := notationsignature.ParseEnvelope(s.mediaType, s.envelope); err == nil {
			if c, err := env.Content(); err == nil {
				if chain := c.SignerInfo.CertificateChain; len(chain) > 0 {
					f.Signer = chain[0].Subject.String()
				}
				if at := c.SignerInfo.SignedAttributes.SigningTime; !at.IsZero() {
					at = at.UTC()
					f.SignedAt = &at
				}
			}
		}
		one := &signatureSet{notation: []notationSignature{s}, subject: set.subject, repo: set.repo}
		f.VerifiedBy = verifiedBy(func(a *authority) bool { ok, _ := a.check(one, h); return ok })
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Kind > out[j].Kind }) // signatures first
	return out, nil
}

// certSigner names the signer of a PEM certificate.
func certSigner(certPEM string) string {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return "an unreadable certificate"
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "an unreadable certificate"
	}
	return summarize(c)
}

// summarize names a certificate's identity: a Fulcio certificate's
// subject alternative name and OIDC issuer, else its subject.
func summarize(c *x509.Certificate) string {
	s, err := certificate.SummarizeCertificate(c)
	switch {
	case err == nil && s.SubjectAlternativeName != "" && s.Issuer != "":
		return s.SubjectAlternativeName + " (issuer " + s.Issuer + ")"
	case err == nil && s.SubjectAlternativeName != "":
		return s.SubjectAlternativeName
	}
	return c.Subject.String()
}

// legacyLoggedAt is the integrated time of a legacy signature's Rekor
// entry (cosign's bundle annotation), if it has one.
func legacyLoggedAt(rekor string) *time.Time {
	var rb struct {
		Payload struct {
			IntegratedTime int64 `json:"integratedTime"`
		}
	}
	if rekor == "" || json.Unmarshal([]byte(rekor), &rb) != nil || rb.Payload.IntegratedTime == 0 {
		return nil
	}
	at := time.Unix(rb.Payload.IntegratedTime, 0).UTC()
	return &at
}
