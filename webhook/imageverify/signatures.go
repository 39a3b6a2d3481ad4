package imageverify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/notaryproject/notation-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"podguard.dev/podguard/policies/rules"
)

// The formats read, as cosign writes them.
const (
	// legacySignatureMediaType is the layer of a cosign signature stored
	// under the sha256-<hex>.sig tag: a "simple signing" payload naming
	// the digest, its signature in an annotation.
	legacySignatureMediaType  = "application/vnd.dev.cosign.simplesigning.v1+json"
	legacySignatureAnnotation = "dev.cosignproject.cosign/signature"
	// A keyless legacy signature (cosign sign without --key and without
	// --new-bundle-format) adds its Fulcio certificate, its Rekor entry
	// ("bundle": the entry's body, integrated time, index, log ID and
	// signed entry timestamp) and, with a timestamp authority, an RFC 3161
	// timestamp as further annotations of the same layer.
	legacyCertificateAnnotation = "dev.sigstore.cosign/certificate"
	legacyRekorAnnotation       = "dev.sigstore.cosign/bundle"
	legacyTimestampAnnotation   = "dev.sigstore.cosign/rfc3161timestamp"
	// bundleArtifactTypePrefix is the artifactType of a Sigstore bundle
	// stored as an OCI referrer of the image (cosign sign
	// --new-bundle-format); its one layer is the bundle's JSON.
	bundleArtifactTypePrefix = "application/vnd.dev.sigstore.bundle"
	emptyConfigMediaType     = "application/vnd.oci.empty.v1+json"
	// cosignSignPredicate is the in-toto predicate of a cosign image
	// signature in a bundle; other predicates are attestations (SBOMs,
	// provenance, scans), which sign statements about the image, not the
	// image itself.
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// Limits on what one verification reads: a registry holding thousands of
// signatures for a digest, or huge ones, costs its reader nothing more.
const (
	maxSignatures   = 16
	maxArtifactSize = 4 << 20
)

// signatureSet is what a registry holds for one digest: the payloads of
// legacy signatures and the bundles of referrers.
type signatureSet struct {
	legacy  []legacySignature
	bundles []*bundle.Bundle
	// notation are Notary Project envelopes; subject is the image's
	// manifest descriptor they must name (read only when there are some)
	// and repo its repository.
	notation []notationSignature
	subject  *ocispec.Descriptor
	repo     string
	// skipped counts what was found but not read (limits, bad form).
	skipped int
}

type legacySignature struct {
	payload, sig []byte
	// cert, rekor and timestamp are a keyless signature's annotations,
	// as written (empty for a key's signature).
	cert, rekor, timestamp string
}

// fetch reads the signatures of digest d in its repository. An error means
// the registry could not be asked: an answer without signatures is an
// empty set.
func (v *Verifier) fetch(ctx context.Context, d name.Digest) (*signatureSet, error) {
	auth := remote.WithAuthFromKeychain(Keychain(ctx, v.Keychain))
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(v.transport), auth}
	set := &signatureSet{repo: d.Context().Name()}

	sigTag := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
	img, err := remote.Image(sigTag, opts...)
	switch {
	case isNotFound(err):
	case err != nil:
		return nil, err
	default:
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		for _, l := range m.Layers {
			if len(set.legacy) >= maxSignatures || l.MediaType != legacySignatureMediaType || l.Size > maxArtifactSize {
				set.skipped++
				continue
			}
			sig, err := base64.StdEncoding.DecodeString(l.Annotations[legacySignatureAnnotation])
			if err != nil || len(sig) == 0 {
				set.skipped++
				continue
			}
			payload, err := readBlob(img, l.Digest)
			if err != nil {
				return nil, err
			}
			set.legacy = append(set.legacy, legacySignature{payload: payload, sig: sig,
				cert: l.Annotations[legacyCertificateAnnotation], rekor: l.Annotations[legacyRekorAnnotation],
				timestamp: l.Annotations[legacyTimestampAnnotation]})
		}
	}

	idx, err := remote.Referrers(d, opts...)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	if idx == nil {
		return set, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, desc := range im.Manifests {
		// A registry lists the manifest's artifactType, or, as the OCI
		// spec allows and some registries do whatever the manifest says,
		// its config's media type: cosign's and notation's is the empty
		// config.
		at := desc.ArtifactType
		if !strings.HasPrefix(at, bundleArtifactTypePrefix) && at != notationArtifactType && at != emptyConfigMediaType {
			continue
		}
		if len(set.bundles)+len(set.notation)+set.skipped >= maxSignatures {
			set.skipped++
			continue
		}
		art, err := remote.Image(d.Context().Digest(desc.Digest.String()), opts...)
		if err != nil {
			return nil, err
		}
		m, err := art.Manifest()
		if err != nil {
			return nil, err
		}
		if m.ArtifactType == notationArtifactType {
			if err := readNotation(d, art, m, set); err != nil {
				return nil, err
			}
			continue
		}
		if len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), bundleArtifactTypePrefix) ||
			(m.ArtifactType != "" && !strings.HasPrefix(m.ArtifactType, bundleArtifactTypePrefix)) {
			continue // another artifact of the image
		}
		if m.Layers[0].Size > maxArtifactSize {
			set.skipped++
			continue
		}
		data, err := readBlob(art, m.Layers[0].Digest)
		if err != nil {
			return nil, err
		}
		b := &bundle.Bundle{}
		if err := b.UnmarshalJSON(data); err != nil {
			set.skipped++
			continue
		}
		set.bundles = append(set.bundles, b)
	}
	if len(set.notation) > 0 {
		desc, err := remote.Head(d, opts...)
		if err != nil {
			return nil, err
		}
		set.subject = ociDescriptor(desc)
	}
	return set, nil
}

// readNotation reads the envelope of notation signature manifest m (of
// artifact art, a referrer of d) into set.
func readNotation(d name.Digest, art v1.Image, m *v1.Manifest, set *signatureSet) error {
	if len(m.Layers) != 1 || (m.Layers[0].MediaType != notationJWS && m.Layers[0].MediaType != notationCOSE) ||
		m.Subject == nil || m.Subject.Digest.String() != d.DigestStr() || m.Layers[0].Size > maxArtifactSize {
		set.skipped++
		return nil
	}
	data, err := readBlob(art, m.Layers[0].Digest)
	if err != nil {
		return err
	}
	set.notation = append(set.notation, notationSignature{mediaType: string(m.Layers[0].MediaType), envelope: data})
	return nil
}

func readBlob(img v1.Image, d v1.Hash) ([]byte, error) {
	l, err := img.LayerByDigest(d)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxArtifactSize))
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusNotFound)
}

// authority is a policy authority made ready to verify.
type authority struct {
	name string
	// key verifies legacy signatures made with it (nil: keyless).
	key signature.Verifier
	// sigstore verifies bundles, and a keyless authority's legacy
	// signatures, whose certificates must name identity. Built once: the
	// authority is cached and verifies concurrently, and a Verifier is
	// immutable.
	sigstore *verify.Verifier
	identity verify.CertificateIdentity
	// notation verifies Notary Project signatures.
	notation notation.Verifier
}

func newAuthority(a rules.Authority) (*authority, error) {
	out := &authority{name: a.Name}
	material, err := a.Material()
	if err != nil {
		return nil, err
	}
	if a.Notation != nil {
		if out.notation, err = newNotationVerifier(a.Notation, material); err != nil {
			return nil, err
		}
		return out, nil
	}
	if a.Key != nil {
		pub, err := rules.ParsePublicKey(material)
		if err != nil {
			return nil, err
		}
		if out.key, err = signature.LoadVerifier(pub, crypto.SHA256); err != nil {
			return nil, err
		}
		key := root.NewExpiringKey(out.key, timeZero, timeZero)
		keyMaterial := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
		if out.sigstore, err = verify.NewVerifier(keyMaterial, verify.WithNoObserverTimestamps()); err != nil {
			return nil, err
		}
		return out, nil
	}
	k := a.Keyless
	tr, err := root.NewTrustedRootFromJSON([]byte(material))
	if err != nil {
		return nil, fmt.Errorf("trustedRoot: %w", err)
	}
	if out.sigstore, err = keylessVerifier(tr, !k.IgnoreSCT); err != nil {
		return nil, err
	}
	if out.identity, err = verify.NewShortCertificateIdentity(k.Issuer, k.IssuerRegExp, k.Subject, k.SubjectRegExp); err != nil {
		return nil, err
	}
	return out, nil
}

// check reports whether one of set's signatures of digest d is this
// authority's, and otherwise why not.
func (a *authority) check(set *signatureSet, d v1.Hash) (bool, string) {
	if a.notation != nil {
		// Only notation signatures are a notation signer's.
		ok, reasons := a.checkNotation(set)
		if ok {
			return true, ""
		}
		return false, set.why(reasons, "no notation signature found")
	}
	var reasons []string
	for _, s := range set.legacy {
		var err error
		switch {
		case a.key != nil:
			err = a.key.VerifySignature(bytes.NewReader(s.sig), bytes.NewReader(s.payload))
		case s.cert == "":
			err = errors.New("signed by a key, not by a keyless identity (no certificate)")
		default:
			err = a.verifyLegacyKeyless(s)
		}
		if err == nil {
			err = payloadNames(s.payload, d)
		}
		if err == nil {
			return true, ""
		}
		reasons = append(reasons, "legacy signature: "+err.Error())
	}
	for _, b := range set.bundles {
		res, err := a.verifyBundle(b, d)
		if err == nil && res.Statement != nil && res.Statement.GetPredicateType() != cosignSignPredicate {
			err = fmt.Errorf("an attestation (%s), not a signature of the image", res.Statement.GetPredicateType())
		}
		if err == nil {
			return true, ""
		}
		reasons = append(reasons, "bundle: "+err.Error())
	}
	return false, set.why(reasons, "no signature found")
}

// why says why no signature of set counted: the reasons each one failed,
// and what was found but not read; none when there was nothing at all.
func (set *signatureSet) why(reasons []string, none string) string {
	if set.skipped > 0 {
		reasons = append(reasons, fmt.Sprintf("%d signature artifacts unreadable or beyond the limits", set.skipped))
	}
	if len(reasons) == 0 {
		return none
	}
	return strings.Join(reasons, "; ")
}

// verifyLegacyKeyless verifies a keyless legacy signature as sigstore-go
// verifies a bundle, by reading it as the bundle it is equivalent to: the
// same certificate, transparency log entry and timestamps, and a message
// signature of the payload. So the certificate chains to the trusted
// root's Fulcio, the identity matches, the Rekor entry's signed entry
// timestamp verifies and its body names this signature, certificate and
// payload digest, exactly as for a bundle; nothing is verified by hand.
func (a *authority) verifyLegacyKeyless(s legacySignature) error {
	b, err := legacyBundle(s)
	if err != nil {
		return err
	}
	_, err = a.sigstore.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(s.payload)), verify.WithCertificateIdentity(a.identity)))
	return err
}

// keylessVerifier verifies keyless signatures as cosign does: the
// certificate chains to a Fulcio CA of the trusted root at a time a
// transparency log entry (and an observer timestamp) proves, and, with
// requireSCT (unless the authority says ignoreSCT), carries an SCT of one
// of its CT logs.
func keylessVerifier(tr root.TrustedMaterial, requireSCT bool) (*verify.Verifier, error) {
	opts := []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
	if requireSCT {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	return verify.NewVerifier(tr, opts...)
}

// legacyBundleMediaType is the bundle version that carries what a legacy
// signature carries: a certificate chain and an entry with an inclusion
// promise (no inclusion proof).
const legacyBundleMediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1"

// legacyBundle is keyless legacy signature s as a Sigstore bundle.
func legacyBundle(s legacySignature) (*bundle.Bundle, error) {
	block, _ := pem.Decode([]byte(s.cert))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("annotation %s is not a PEM certificate", legacyCertificateAnnotation)
	}
	if s.rekor == "" {
		return nil, fmt.Errorf("no transparency log entry (annotation %s): a keyless signature needs one", legacyRekorAnnotation)
	}
	// cosign's RekorBundle: the signed entry timestamp over the payload.
	var rb struct {
		SignedEntryTimestamp []byte
		Payload              struct {
			Body           string `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		}
	}
	if err := json.Unmarshal([]byte(s.rekor), &rb); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", legacyRekorAnnotation, err)
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: Payload.body: %w", legacyRekorAnnotation, err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: Payload.logID: %w", legacyRekorAnnotation, err)
	}
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kind); err != nil {
		return nil, fmt.Errorf("annotation %s: Payload.body: %w", legacyRekorAnnotation, err)
	}
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: block.Bytes}}}},
		TlogEntries: []*protorekor.TransparencyLogEntry{{
			LogIndex:          rb.Payload.LogIndex,
			LogId:             &protocommon.LogId{KeyId: logID},
			KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
			IntegratedTime:    rb.Payload.IntegratedTime,
			InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
			CanonicalizedBody: body,
		}},
		TimestampVerificationData: &protobundle.TimestampVerificationData{},
	}
	if s.timestamp != "" {
		var ts struct{ SignedRFC3161Timestamp []byte }
		if err := json.Unmarshal([]byte(s.timestamp), &ts); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", legacyTimestampAnnotation, err)
		}
		vm.TimestampVerificationData.Rfc3161Timestamps = []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts.SignedRFC3161Timestamp}}
	}
	digest := sha256.Sum256(s.payload)
	return bundle.NewBundle(&protobundle.Bundle{
		MediaType:            legacyBundleMediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     s.sig,
		}},
	})
}

// verifyBundle verifies bundle b as this authority's, for digest d: a key
// bundle against the key, a keyless one against the trusted root (a
// transparency log entry, an observer timestamp and, unless ignoreSCT, an
// SCT required) and the identity.
func (a *authority) verifyBundle(b *bundle.Bundle, d v1.Hash) (*verify.VerificationResult, error) {
	digest, err := hex.DecodeString(d.Hex)
	if err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	signer := verify.WithKey()
	if a.key == nil {
		signer = verify.WithCertificateIdentity(a.identity)
	}
	return a.sigstore.Verify(b, verify.NewPolicy(verify.WithArtifactDigest(d.Algorithm, digest), signer))
}

// payloadNames checks that a legacy signature's payload names digest d:
// a signature of some other image, copied next to this one, does not
// count.
func payloadNames(payload []byte, d v1.Hash) error {
	var p struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if p.Critical.Type != "cosign container image signature" {
		return fmt.Errorf("payload type %q is not a cosign image signature", p.Critical.Type)
	}
	if p.Critical.Image.Digest != d.String() {
		return fmt.Errorf("signs %s, not %s", p.Critical.Image.Digest, d)
	}
	return nil
}
