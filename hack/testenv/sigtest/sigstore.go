package sigtest

// Keyless signing as cosign does it against a Sigstore: a short-lived
// Fulcio certificate for an OIDC identity, with an SCT of a certificate
// transparency log embedded, a Rekor entry with its signed entry timestamp
// and an RFC 3161 timestamp. sigstore-go's virtual Sigstore provides Rekor
// and the timestamp authority; its Fulcio issues no SCTs, so the Fulcio CA
// and the CT log are this package's, and the trusted root names them.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"

	"podguard.dev/podguard/hack/testenv"
)

// Sigstore is an in-memory Sigstore: Fulcio and a CT log of its own,
// Rekor and a timestamp authority of sigstore-go's virtual Sigstore.
type Sigstore struct {
	vs              *ca.VirtualSigstore
	root, issuing   *x509.Certificate
	issuingKey      *ecdsa.PrivateKey
	ctKey           *ecdsa.PrivateKey
	withoutSCT      bool
	validFrom, till time.Time
}

// NewSigstore returns a Sigstore whose certificates carry an SCT.
func NewSigstore(t testing.TB) *Sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	issuing, issuingKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	ctKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return &Sigstore{vs: vs, root: rootCert, issuing: issuing, issuingKey: issuingKey, ctKey: ctKey,
		validFrom: now.Add(-time.Hour), till: now.Add(time.Hour)}
}

// WithoutSCT makes s's Fulcio issue certificates without an SCT, as a
// Fulcio without certificate transparency does.
func (s *Sigstore) WithoutSCT() *Sigstore {
	c := *s
	c.withoutSCT = true
	return &c
}

// WithCTLogOf makes s's Fulcio embed SCTs of other's CT log, which s's
// trusted root does not name.
func (s *Sigstore) WithCTLogOf(other *Sigstore) *Sigstore {
	c := *s
	c.ctKey = other.ctKey
	return &c
}

// ctLogID is the CT log's ID: the SHA-256 of its public key.
func (s *Sigstore) ctLogID(t testing.TB) []byte {
	der, err := x509.MarshalPKIXPublicKey(s.ctKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(der)
	return id[:]
}

// TrustedRootJSON is s's trusted_root.json (Fulcio CA, CT log, Rekor,
// timestamp authority), as a policy names it.
func (s *Sigstore) TrustedRootJSON(t testing.TB) string {
	t.Helper()
	// The virtual Sigstore names its logs by the hex of their key IDs,
	// and holds those hex strings as the IDs: a trusted root carries the
	// raw key IDs.
	rekor := s.vs.RekorLogs()
	for k, l := range rekor {
		id, err := hex.DecodeString(k)
		if err != nil {
			t.Fatal(err)
		}
		l.ID = id
	}
	ctID := s.ctLogID(t)
	ctlogs := map[string]*root.TransparencyLog{hex.EncodeToString(ctID): {BaseURL: "https://ctlog.localhost", ID: ctID,
		ValidityPeriodStart: s.validFrom, ValidityPeriodEnd: s.till, HashFunc: crypto.SHA256, PublicKey: s.ctKey.Public()}}
	fulcio := []root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: s.root, Intermediates: []*x509.Certificate{s.issuing},
		ValidityPeriodStart: s.validFrom, ValidityPeriodEnd: s.till, URI: "https://fulcio.localhost"}}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, fulcio, ctlogs, s.vs.TimestampingAuthorities(), rekor)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The extensions Fulcio and certificate transparency add.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidSCTList  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// leaf issues a ten-minute certificate for identity (a URI or an email)
// and OIDC issuer, with an SCT of s's CT log embedded unless withoutSCT.
func (s *Sigstore) leaf(t testing.TB, identity, issuer string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV1, Value: []byte(issuer)}}}
	if u, err := url.Parse(identity); err == nil && u.Scheme != "" {
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{identity}
	}
	create := func() *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, s.issuing, key.Public(), s.issuingKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if s.withoutSCT {
		return create(), key
	}
	// The SCT signs the certificate as it is without its SCT list: issue
	// it once with a placeholder list to learn that TBS, then for real.
	placeholder, err := sctListExtension([]byte{0})
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, placeholder)
	tbs, err := ctx509.RemoveSCTList(create().RawTBSCertificate)
	if err != nil {
		t.Fatal(err)
	}
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: uint64(now.UnixMilli())}
	copy(sct.LogID.KeyID[:], s.ctLogID(t))
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: ct.MerkleTreeLeaf{Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{EntryType: ct.PrecertLogEntryType, Timestamp: sct.Timestamp,
			PrecertEntry: &ct.PreCert{IssuerKeyHash: sha256.Sum256(s.issuing.RawSubjectPublicKeyInfo), TBSCertificate: tbs}}}})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig}
	serialized, err := cttls.Marshal(sct)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := sctListExtension(serialized)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExtraExtensions[len(tmpl.ExtraExtensions)-1] = ext
	return create(), key
}

// sctListExtension is the X.509 extension holding one serialized SCT.
func sctListExtension(sct []byte) (pkix.Extension, error) {
	list, err := cttls.Marshal(ctx509.SignedCertificateTimestampList{SCTList: []ctx509.SerializedSCT{{Val: sct}}})
	if err != nil {
		return pkix.Extension{}, err
	}
	value, err := asn1.Marshal(list)
	return pkix.Extension{Id: oidSCTList, Value: value}, err
}

// SignKeyless stores a keyless Sigstore bundle of statement as a referrer
// of repo@d: a certificate of s's Fulcio for identity and issuer, a Rekor
// entry with its signed entry timestamp and inclusion proof, and an RFC
// 3161 timestamp.
func SignKeyless(t testing.TB, r *testenv.Registry, s *Sigstore, identity, issuer, repo string, d v1.Hash, statement []byte) {
	t.Helper()
	leaf, key := s.leaf(t, identity, issuer)
	const payloadType = "application/vnd.in-toto+json"
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(statement), statement)
	digest := sha256.Sum256([]byte(pae))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	env := &dsse.Envelope{PayloadType: payloadType, Payload: base64.StdEncoding.EncodeToString(statement),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}}
	entry, err := s.vs.GenerateTlogEntry(leaf, env, sig, time.Now().Unix(), true)
	if err != nil {
		t.Fatal(err)
	}
	stamp, err := s.vs.TimestampResponse(sig)
	if err != nil {
		t.Fatal(err)
	}
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
			TlogEntries: []*protorekor.TransparencyLogEntry{s.withPromise(t, entry.TransparencyLogEntry(), "dsse")},
			TimestampVerificationData: &protobundle.TimestampVerificationData{
				Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: stamp}}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: statement, PayloadType: payloadType, Signatures: []*protodsse.Signature{{Sig: sig}}}},
	}
	PushReferrer(t, r, repo, d, b)
}

// withPromise completes a Rekor entry as a bundle carries it: its kind
// and its signed entry timestamp (the virtual Sigstore keeps the one it
// made inside the parsed entry, so it is signed again: any valid
// signature of the same payload is one).
func (s *Sigstore) withPromise(t testing.TB, tle *protorekor.TransparencyLogEntry, kind string) *protorekor.TransparencyLogEntry {
	t.Helper()
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		t.Fatal(err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	tle.KindVersion = &protorekor.KindVersion{Kind: kind, Version: "0.0.1"}
	return tle
}

// SignLegacyKeyless stores a keyless legacy signature of payload under
// repo's sha256-<hex>.sig tag for digest d, as cosign sign does without
// --key and without --new-bundle-format: the signature, the Fulcio
// certificate of s for identity and issuer and its chain, the Rekor entry
// (a hashedrekord; cosign's "bundle" annotation: body, integrated time,
// index, log ID and signed entry timestamp) and an RFC 3161 timestamp,
// each an annotation of the payload's layer.
func SignLegacyKeyless(t testing.TB, r *testenv.Registry, s *Sigstore, identity, issuer, repo string, d v1.Hash, payload []byte) {
	t.Helper()
	leaf, key := s.leaf(t, identity, issuer)
	digest := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	body, err := json.Marshal(map[string]any{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": map[string]any{
		"data":      map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": hex.EncodeToString(digest[:])}},
		"signature": map[string]any{"content": base64.StdEncoding.EncodeToString(sig), "publicKey": map[string]string{"content": base64.StdEncoding.EncodeToString(leafPEM)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	logID, err := s.vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	rekorPayload := tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: time.Now().Unix(), LogIndex: 1000, LogID: logID}
	set, err := s.vs.RekorSignPayload(rekorPayload)
	if err != nil {
		t.Fatal(err)
	}
	rekorBundle, _ := json.Marshal(map[string]any{"SignedEntryTimestamp": set, "Payload": rekorPayload})
	tsr, err := s.vs.TimestampResponse(sig)
	if err != nil {
		t.Fatal(err)
	}
	stamp, _ := json.Marshal(map[string]any{"SignedRFC3161Timestamp": tsr})
	var chain bytes.Buffer
	for _, c := range []*x509.Certificate{s.issuing, s.root} {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	appendLegacyLayer(t, r, repo, d, payload, map[string]string{
		"dev.cosignproject.cosign/signature":   base64.StdEncoding.EncodeToString(sig),
		"dev.sigstore.cosign/certificate":      string(leafPEM),
		"dev.sigstore.cosign/chain":            chain.String(),
		"dev.sigstore.cosign/bundle":           string(rekorBundle),
		"dev.sigstore.cosign/rfc3161timestamp": string(stamp),
	})
}
