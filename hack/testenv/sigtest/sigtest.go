// Package sigtest signs images as cosign does, for tests of
// imageSignatures and imageVulnerabilities; a package of its own, so only
// the tests that sign link sigstore-go.
package sigtest

// Signing images as cosign does, for tests of imageSignatures: the legacy
// format (a simple-signing payload under the sha256-<hex>.sig tag, its
// signature in a layer annotation, with a keyless signer's certificate and
// Rekor entry beside it) and the Sigstore bundle format (a
// bundle stored as an OCI referrer of the image, cosign sign
// --new-bundle-format), by a key (sigstore-go's signer) or keyless (a
// certificate of sigstore-go's virtual Sigstore: Fulcio CA, Rekor and a
// timestamp authority in memory). cosign itself is not a dependency: the
// formats are written here from its specification, and read back by the
// verifier under test.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/notaryproject/notation-go"
	notationsigner "github.com/notaryproject/notation-go/signer"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"podguard.dev/podguard/hack/testenv"
)

// The media and predicate types cosign writes.
const (
	BundleMediaType     = "application/vnd.dev.sigstore.bundle.v0.3+json"
	CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
	SLSAPredicate       = "https://slsa.dev/provenance/v1"
)

// Signer is a key that signs images in both formats.
type Signer struct {
	*sign.EphemeralKeypair
	// PEM is its public key, as a policy names it.
	PEM string
}

// NewSigner returns a new ECDSA P-256 key.
func NewSigner(t testing.TB) *Signer {
	t.Helper()
	kp, err := sign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := kp.GetPublicKeyPem()
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{EphemeralKeypair: kp, PEM: pem}
}

// SimpleSigningPayload is cosign's legacy payload naming ref's digest d.
func SimpleSigningPayload(repo string, d v1.Hash) []byte {
	b, _ := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": repo},
			"image":    map[string]string{"docker-manifest-digest": d.String()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	return b
}

// SignLegacy stores s's signature of payload (SimpleSigningPayload for a
// faithful one) under repo's sha256-<hex>.sig tag for digest d, as cosign
// sign does without --new-bundle-format; a second signature is appended
// as a second layer, as cosign does.
func SignLegacy(t testing.TB, r *testenv.Registry, s *Signer, repo string, d v1.Hash, payload []byte) {
	t.Helper()
	sig, _, err := s.SignData(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	appendLegacyLayer(t, r, repo, d, payload, map[string]string{
		"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)})
}

// Sign stores s's signature of repo's digest d as cosign sign does
// without --new-bundle-format: SignLegacy with the faithful payload.
func Sign(t testing.TB, r *testenv.Registry, s *Signer, repo string, d v1.Hash) {
	t.Helper()
	SignLegacy(t, r, s, repo, d, SimpleSigningPayload(r.Host+"/"+repo, d))
}

// appendLegacyLayer adds payload with annotations as a layer of repo's
// sha256-<hex>.sig image for digest d, creating it if need be.
func appendLegacyLayer(t testing.TB, r *testenv.Registry, repo string, d v1.Hash, payload []byte, annotations map[string]string) {
	t.Helper()
	tag := ref(t, r, fmt.Sprintf("%s:%s-%s.sig", repo, d.Algorithm, d.Hex))
	opt := remote.WithTransport(r.Client().Transport)
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	if existing, err := remote.Image(tag, opt); err == nil {
		base = existing
	}
	layer := static.NewLayer(payload, "application/vnd.dev.cosign.simplesigning.v1+json")
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, Annotations: annotations})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, opt); err != nil {
		t.Fatal(err)
	}
}

// LegacyAnnotations are the annotations of the first layer of repo's
// sha256-<hex>.sig image for digest d.
func LegacyAnnotations(t testing.TB, r *testenv.Registry, repo string, d v1.Hash) map[string]string {
	t.Helper()
	img, err := remote.Image(ref(t, r, fmt.Sprintf("%s:%s-%s.sig", repo, d.Algorithm, d.Hex)), remote.WithTransport(r.Client().Transport))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].Annotations
}

// EditLegacyAnnotations rewrites the first layer's annotations of repo's
// sha256-<hex>.sig image for digest d with edit: a signature tampered
// with after signing.
func EditLegacyAnnotations(t testing.TB, r *testenv.Registry, repo string, d v1.Hash, edit func(map[string]string)) {
	t.Helper()
	tag := ref(t, r, fmt.Sprintf("%s:%s-%s.sig", repo, d.Algorithm, d.Hex))
	opt := remote.WithTransport(r.Client().Transport)
	img, err := remote.Image(tag, opt)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	m = m.DeepCopy()
	edit(m.Layers[0].Annotations)
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag, rawManifest(raw), opt); err != nil {
		t.Fatal(err)
	}
}

// Statement is an in-toto statement about repo@d with predicateType.
func Statement(repo string, d v1.Hash, predicateType string) []byte {
	b, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": repo, "digest": map[string]string{d.Algorithm: d.Hex}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{},
	})
	return b
}

// VulnPredicate is cosign's vulnerability attestation predicate type.
const VulnPredicate = "https://cosign.sigstore.dev/attestation/vuln/v1"

// VulnStatement is an in-toto statement about repo@d with cosign's vuln
// predicate holding a Trivy JSON report (as trivy image --format
// cosign-vuln writes it) of the findings (ID -> severity, Trivy's
// uppercase), finished at finished.
func VulnStatement(repo string, d v1.Hash, finished time.Time, findings map[string]string) []byte {
	var vulns []any
	for id, sev := range findings {
		vulns = append(vulns, map[string]any{"VulnerabilityID": id, "PkgName": "openssl", "Severity": sev})
	}
	b, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": repo, "digest": map[string]string{d.Algorithm: d.Hex}}},
		"predicateType": VulnPredicate,
		"predicate": map[string]any{
			"invocation": map[string]any{"uri": "", "event_id": ""},
			"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@v0.58.0", "version": "0.58.0",
				"db":     map[string]any{"uri": "", "version": ""},
				"result": map[string]any{"SchemaVersion": 2, "ArtifactName": repo, "Results": []any{map[string]any{"Target": repo, "Vulnerabilities": vulns}}}},
			"metadata": map[string]any{"scanStartedOn": finished.Add(-time.Minute).UTC().Format(time.RFC3339), "scanFinishedOn": finished.UTC().Format(time.RFC3339)},
		},
	})
	return b
}

// CycloneDXPredicate is the predicate type of a CycloneDX BOM attestation
// (cosign attest --type cyclonedx).
const CycloneDXPredicate = "https://cyclonedx.org/bom"

// CycloneDXFinding is one vulnerabilities[] entry of a CycloneDX BOM: its
// ratings' severities (CycloneDX's lowercase) and, for VEX, an analysis
// state ("" for none).
type CycloneDXFinding struct {
	Severities []string
	State      string
}

// CycloneDXStatement is an in-toto statement about repo@d with a
// CycloneDX 1.5 BOM as trivy image --format cyclonedx --scanners vuln
// writes it, timestamped at when (omitted if zero): findings (by ID) as
// its vulnerabilities, or, with findings nil, no vulnerabilities array at
// all (an SBOM).
func CycloneDXStatement(repo string, d v1.Hash, when time.Time, findings map[string]CycloneDXFinding) []byte {
	metadata := map[string]any{"tools": map[string]any{"components": []any{map[string]any{"type": "application", "name": "trivy", "version": "0.58.0"}}}}
	if !when.IsZero() {
		metadata["timestamp"] = when.UTC().Format(time.RFC3339)
	}
	bom := map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "metadata": metadata,
		"components": []any{map[string]any{"type": "library", "name": "openssl", "bom-ref": "pkg:deb/debian/openssl"}}}
	if findings != nil {
		vulns := []any{}
		for id, f := range findings {
			var ratings []any
			for _, s := range f.Severities {
				ratings = append(ratings, map[string]any{"severity": s, "method": "CVSSv31"})
			}
			v := map[string]any{"id": id, "ratings": ratings, "affects": []any{map[string]any{"ref": "pkg:deb/debian/openssl"}}}
			if f.State != "" {
				v["analysis"] = map[string]any{"state": f.State}
			}
			vulns = append(vulns, v)
		}
		bom["vulnerabilities"] = vulns
	}
	b, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": repo, "digest": map[string]string{d.Algorithm: d.Hex}}},
		"predicateType": CycloneDXPredicate,
		"predicate":     bom,
	})
	return b
}

// SignBundle stores s's Sigstore bundle (a DSSE envelope of statement,
// key-signed, no transparency log) as a referrer of repo@d.
func SignBundle(t testing.TB, r *testenv.Registry, s *Signer, repo string, d v1.Hash, statement []byte) {
	t.Helper()
	b, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: "application/vnd.in-toto+json"}, s.EphemeralKeypair, sign.BundleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	PushReferrer(t, r, repo, d, b)
}

// PushReferrer stores bundle b as an OCI 1.1 referrer of repo@d: an
// artifact manifest whose subject is the image, its one layer the
// bundle's JSON.
func PushReferrer(t testing.TB, r *testenv.Registry, repo string, d v1.Hash, b *protobundle.Bundle) {
	t.Helper()
	data, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	PushReferrerJSON(t, r, repo, d, data)
}

// PushReferrerJSON stores data as a Sigstore bundle referrer of repo@d,
// as cosign does: an OCI image manifest with artifactType set, the empty
// config, one layer holding the bundle, and the image as its subject.
func PushReferrerJSON(t testing.TB, r *testenv.Registry, repo string, d v1.Hash, data []byte) {
	t.Helper()
	pushReferrer(t, r, repo, d, BundleMediaType, BundleMediaType, data)
}

// NotationArtifactType is the artifactType of a Notary Project signature.
const NotationArtifactType = "application/vnd.cncf.notary.signature"

// SignNotation stores a Notary Project signature of repo@d as notation
// sign does: an envelope of mediaType (application/jose+json or
// application/cose) naming the image's manifest descriptor, signed by key
// with its certificate chain (leaf first), in an OCI manifest of
// artifactType application/vnd.cncf.notary.signature whose subject is the
// image. With target set, the envelope names that descriptor instead (a
// signature of another image copied next to this one).
func SignNotation(t testing.TB, r *testenv.Registry, repo string, d v1.Hash, key crypto.PrivateKey, chain []*x509.Certificate, mediaType string, target *v1.Descriptor) {
	t.Helper()
	if target == nil {
		subject, err := remote.Head(ref(t, r, repo+"@"+d.String()), remote.WithTransport(r.Client().Transport))
		if err != nil {
			t.Fatal(err)
		}
		target = subject
	}
	s, err := notationsigner.NewGenericSigner(key, chain)
	if err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{MediaType: string(target.MediaType), Digest: digest.Digest(target.Digest.String()), Size: target.Size}
	env, _, err := s.Sign(context.Background(), desc, notation.SignerSignOptions{SignatureMediaType: mediaType})
	if err != nil {
		t.Fatal(err)
	}
	pushReferrer(t, r, repo, d, NotationArtifactType, mediaType, env)
}

// pushReferrer stores data as the one layer of an OCI image manifest of
// artifactType, with the empty config and repo@d as its subject: how
// cosign and notation both store what they attach to an image.
func pushReferrer(t testing.TB, r *testenv.Registry, repo string, d v1.Hash, artifactType, layerMediaType string, data []byte) {
	t.Helper()
	opt := remote.WithTransport(r.Client().Transport)
	subject, err := remote.Head(ref(t, r, repo+"@"+d.String()), opt)
	if err != nil {
		t.Fatal(err)
	}
	repository := ref(t, r, repo).Context()
	config := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")
	layer := static.NewLayer(data, types.MediaType(layerMediaType))
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repository, l, opt); err != nil {
			t.Fatal(err)
		}
		dg, _ := l.Digest()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		descs = append(descs, v1.Descriptor{MediaType: mt, Digest: dg, Size: size})
	}
	m, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
		Config: descs[0], Layers: descs[1:], Subject: &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}})
	if err != nil {
		t.Fatal(err)
	}
	md, _, _ := v1.SHA256(bytes.NewReader(m))
	if err := remote.Put(repository.Digest(md.String()), rawManifest(m), opt); err != nil {
		t.Fatal(err)
	}
}

// rawManifest is a manifest written as is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func ref(t testing.TB, r *testenv.Registry, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
