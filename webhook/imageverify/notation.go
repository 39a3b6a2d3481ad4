package imageverify

// Notary Project signatures (notation sign): a JWS or COSE envelope stored
// as an OCI referrer of the image, whose payload names the image's
// manifest descriptor, signed by a certificate chaining to the
// authority's CA. Verified with notation-go's verifier, configured here
// from the policy alone: no trust policy or trust store file, no plugin,
// no revocation lookup (no network at admission).

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/notaryproject/notation-core-go/revocation"
	"github.com/notaryproject/notation-core-go/revocation/result"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // registers the COSE envelope
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // registers the JWS envelope
	"github.com/notaryproject/notation-go"
	notationverifier "github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"podguard.dev/podguard/policies/rules"
)

// The Notary Project's artifact type and envelope media types.
const (
	notationArtifactType = "application/vnd.cncf.notary.signature"
	notationJWS          = "application/jose+json"
	notationCOSE         = "application/cose"
)

// notationSignature is one envelope found for a digest.
type notationSignature struct {
	mediaType string
	envelope  []byte
}

// notationStore is the one trust store of an authority's trust policy.
const notationStore = "podguard"

// memoryTrustStore is a trust store of certificates given in the policy.
type memoryTrustStore []*x509.Certificate

// GetCertificates implements truststore.X509TrustStore: only the
// authority's own CA store exists.
func (s memoryTrustStore) GetCertificates(_ context.Context, typ truststore.Type, named string) ([]*x509.Certificate, error) {
	if typ != truststore.TypeCA || named != notationStore {
		return nil, fmt.Errorf("no trust store %s:%s", typ, named)
	}
	return s, nil
}

// noRevocation answers every revocation question with an error: the trust
// policy skips revocation of the signing chain, and a timestamp chain
// must not make podguard dial out either.
type noRevocation struct{}

func (noRevocation) ValidateContext(context.Context, revocation.ValidateContextOptions) ([]*result.CertRevocationResult, error) {
	return nil, errors.New("revocation is not checked at admission (no network)")
}

// newNotationVerifier builds the verifier of one notation authority.
func newNotationVerifier(n *rules.NotationAuthority, certsPEM string) (notation.Verifier, error) {
	certs, err := rules.ParseCertificates(certsPEM)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	doc := &trustpolicy.Document{Version: "1.0", TrustPolicies: []trustpolicy.TrustPolicy{{
		Name:           "podguard",
		RegistryScopes: []string{"*"},
		SignatureVerification: trustpolicy.SignatureVerification{
			VerificationLevel: trustpolicy.LevelStrict.Name,
			Override:          map[trustpolicy.ValidationType]trustpolicy.ValidationAction{trustpolicy.TypeRevocation: trustpolicy.ActionSkip},
		},
		TrustStores:       []string{string(truststore.TypeCA) + ":" + notationStore},
		TrustedIdentities: n.TrustedIdentities,
	}}}
	return notationverifier.NewWithOptions(doc, memoryTrustStore(certs), nil, notationverifier.VerifierOptions{
		RevocationCodeSigningValidator:  noRevocation{},
		RevocationTimestampingValidator: noRevocation{},
	})
}

// checkNotation reports whether one of the set's notation signatures is
// this authority's signature of the image's manifest, and otherwise why
// not.
func (a *authority) checkNotation(set *signatureSet) (bool, []string) {
	var reasons []string
	for _, s := range set.notation {
		if set.subject == nil {
			return false, []string{"notation: the image's descriptor could not be read"}
		}
		_, err := a.notation.Verify(context.Background(), *set.subject, s.envelope,
			notation.VerifierVerifyOptions{ArtifactReference: set.repo + "@" + string(set.subject.Digest), SignatureMediaType: s.mediaType})
		if err == nil {
			return true, nil
		}
		reasons = append(reasons, "notation: "+err.Error())
	}
	return false, reasons
}

// ociDescriptor is the descriptor notation signs: the image manifest's
// media type, digest and size.
func ociDescriptor(d *v1.Descriptor) *ocispec.Descriptor {
	return &ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}
}
