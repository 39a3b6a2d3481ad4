package rules

// imageSignatures: the images a trust entry covers (globs over the
// reference) carry a valid signature of their digest by the authorities
// it lists: any of them, or every one with require: all. The successor of
// the hardening write-up's Docker Content Trust (`docker trust sign`):
// cosign signatures, as the legacy sha256-<digest>.sig tag or as a
// Sigstore bundle stored as an OCI referrer, by a public key or by a
// keyless identity (OIDC issuer and subject) under a Sigstore trusted root
// given in the policy (offline: nothing is fetched).
// The rule does no I/O: the caller verifies the digests and hands the
// verdicts over (imagetrust). Offline (podguard validate without
// --verify-images) there are none, and the rule only notes that the
// images were not verified. A digest verified within staleIfError is
// admitted with a warning while its registry cannot be reached; one never
// verified is denied, saying the registry was unreachable.
// Natively webhook-only: CEL cannot ask a registry.
// Exemptions by image glob or container name reach containers; an image
// volume belongs to the pod (exempt the namespace or the workload).

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"*containers.image", "volumes.image"},
		ID:    "imageSignatures", Order: 216, Action: v1alpha1.ActionEnforce,
		Checklist: ItemSignedImages, PlatformOnly: true,
		Doc: `Images matching a trust entry's globs carry a signature of their
digest by its authorities (any, or all with require: all): a public
key, a keyless identity (OIDC issuer and subject) under a Sigstore
trusted root, or a Notary Project CA and the identities it may certify,
given here or read from a ConfigMap or Secret in podguard's namespace.
Cosign's legacy .sig tag, Sigstore bundles and notation signatures
stored as OCI referrers all verify. Verified at admission by the
webhook; nothing is verified until a trust entry exists.`,
		Example: `trust:
- images: ["registry.example/team/*"]
  require: any
  authorities:
  - name: release-key
    key:
      pem: |
        -----BEGIN PUBLIC KEY-----
        ...
        -----END PUBLIC KEY-----
  - name: team-key  # or read from a ConfigMap (or Secret) in podguard's namespace
    key:
      pemFrom: {configMapKeyRef: {name: cosign-keys, key: team.pub}}
  - name: notary  # a Notary Project signer (notation sign)
    notation:
      certificatesFrom: {configMapKeyRef: {name: notation-ca, key: ca.crt}}
      trustedIdentities: ["x509.subject: C=US, O=Example, CN=release"]
  - name: ci
    keyless:
      issuer: https://token.actions.githubusercontent.com
      subjectRegExp: ^https://github.com/example/app/
      # or trustedRootFrom: {configMapKeyRef: {name: ..., key: ...}}, or from a TUF
      # repository: tuf: {url: https://tuf.example, rootFrom: {configMapKeyRef: ...}}
      trustedRoot: |
        {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", ...}`,
		Params: func() v1alpha1.RuleParams { return &ImageSignaturesParams{} },
		New:    newImageSignatures,
		Native: nativeImageSignatures,
	})
}

// ItemSignedImages is the write-up's "sign images" (Docker Content Trust).
var ItemSignedImages = ChecklistItem{ID: "signedImages", Title: "Signed images (Docker Content Trust's successors: Sigstore cosign)", Order: 105}

// ImageSignaturesParams are the imageSignatures rule's parameters.
type ImageSignaturesParams struct {
	// Trust lists which images need whose signatures. An image matching
	// several entries must satisfy each. Empty (the default): nothing is
	// verified.
	Trust []ImageTrust `json:"trust,omitempty"`
	VerdictCache
}

// ImageTrust is one entry of imageSignatures' trust list.
type ImageTrust struct {
	// Images are globs over the image reference as written
	// (registry.example/team/*).
	Images []string `json:"images"`
	// Require is any (the default: one authority's signature suffices) or
	// all (every authority must have signed).
	Require string `json:"require,omitempty"`
	// Authorities are who may sign.
	Authorities []Authority `json:"authorities"`
}

// Authority is one signer: a public key or a keyless identity.
type Authority struct {
	// Name names the authority in messages and reports.
	Name string `json:"name"`
	// Key is a public key's PEM (cosign.pub).
	Key *KeyAuthority `json:"key,omitempty"`
	// Keyless is an identity certified by a Sigstore CA (Fulcio).
	Keyless *KeylessAuthority `json:"keyless,omitempty"`
	// Notation is a signer of the Notary Project (notation sign), known by
	// the CA its certificate chains to and the identities it may name.
	Notation *NotationAuthority `json:"notation,omitempty"`
}

// NotationAuthority verifies Notary Project signatures (JWS or COSE
// envelopes stored as OCI referrers) as notation verify does under a trust
// policy of one statement: this authority's CA certificates as its trust
// store (type ca), its trusted identities, verification level strict,
// revocation not checked (that would need the network at admission),
// plugins never run (a signature that needs one does not verify).
type NotationAuthority struct {
	// Certificates are the PEM certificates of the trust store: the root
	// CA (or CAs) signing certificates chain to.
	Certificates string `json:"certificates,omitempty"`
	// CertificatesFrom reads them from a ConfigMap or Secret in
	// podguard's namespace instead.
	CertificatesFrom *TrustSource `json:"certificatesFrom,omitempty"`
	// TrustedIdentities are who may sign, as in a notation trust policy:
	// "x509.subject: C=US, O=Example, CN=release", or "*" for any
	// certificate chaining to the CA.
	TrustedIdentities []string `json:"trustedIdentities"`
	from              sourced
}

// KeyAuthority is a signer known by its public key.
type KeyAuthority struct {
	// PEM is the public key (ECDSA, RSA or Ed25519), PEM-encoded.
	PEM string `json:"pem,omitempty"`
	// PEMFrom reads the PEM from a ConfigMap or Secret in podguard's
	// namespace instead (the chart mounts those the policy names), so a
	// key is rotated without editing the policy.
	PEMFrom *TrustSource `json:"pemFrom,omitempty"`
	from    sourced
}

// KeylessAuthority is a signer known by the identity its certificate
// names.
type KeylessAuthority struct {
	// Issuer is the OIDC issuer exactly; or IssuerRegExp a regular
	// expression (RE2) it must match.
	Issuer       string `json:"issuer,omitempty"`
	IssuerRegExp string `json:"issuerRegExp,omitempty"`
	// Subject is the identity (an email, a workflow URI) exactly; or
	// SubjectRegExp a regular expression it must match.
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
	// TrustedRoot is a Sigstore trusted_root.json (Fulcio CAs, Rekor logs,
	// timestamp authorities): the public good instance's or a private
	// one's. Given here, so verification needs no network.
	TrustedRoot string `json:"trustedRoot,omitempty"`
	// TrustedRootFrom reads the trusted root from a ConfigMap or Secret in
	// podguard's namespace instead (still no network).
	TrustedRootFrom *TrustSource `json:"trustedRootFrom,omitempty"`
	// TUF reads the trusted root from a TUF repository instead (its
	// trusted_root.json target), refreshed as the repository rotates it:
	// the one way podguard asks the network for trust material, and only
	// where a policy names a repository.
	TUF *TUFSource `json:"tuf,omitempty"`
	// IgnoreSCT accepts certificates without a signed certificate
	// timestamp of one of the trusted root's CT logs (a private Fulcio
	// without certificate transparency). Default false: an SCT is
	// required, as cosign requires it, so a certificate Fulcio issued
	// outside the public CT log does not count.
	IgnoreSCT bool `json:"ignoreSCT,omitempty"`
	from      sourced
}

// The require values.
const (
	RequireAny = "any"
	RequireAll = "all"
)

// Default fills require, staleIfError and verdictTTL.
func (r *ImageSignaturesParams) Default() {
	r.defaultCache()
	for i := range r.Trust {
		if r.Trust[i].Require == "" {
			r.Trust[i].Require = RequireAny
		}
	}
}

// Validate checks every entry: globs, require, one kind of authority
// each, keys that parse, regular expressions that compile.
func (r *ImageSignaturesParams) Validate(path *field.Path) field.ErrorList {
	errs := r.validateCache(path)
	for i, tr := range r.Trust {
		p := path.Child("trust").Index(i)
		errs = append(errs, validateEntry(p, tr.Images, tr.Authorities, "these images")...)
		if tr.Require != RequireAny && tr.Require != RequireAll {
			errs = append(errs, field.NotSupported(p.Child("require"), tr.Require, []string{RequireAny, RequireAll}))
		}
	}
	return errs
}

func (a Authority) validate(p *field.Path, names sets.Set[string]) field.ErrorList {
	var errs field.ErrorList
	switch {
	case a.Name == "":
		errs = append(errs, field.Required(p.Child("name"), "a name for messages and reports"))
	case names.Has(a.Name):
		errs = append(errs, field.Duplicate(p.Child("name"), a.Name))
	}
	names.Insert(a.Name)
	if n := count(a.Key != nil, a.Keyless != nil, a.Notation != nil); n != 1 {
		return append(errs, field.Invalid(p, a.Name, "set exactly one of key, keyless or notation"))
	}
	if a.Notation != nil {
		return append(errs, a.Notation.validate(p.Child("notation"))...)
	}
	if a.Key != nil {
		kp := p.Child("key")
		if (a.Key.PEM == "") == (a.Key.PEMFrom == nil) {
			return append(errs, field.Required(kp, "set exactly one of pem or pemFrom"))
		}
		if a.Key.PEMFrom != nil {
			return append(errs, a.Key.PEMFrom.validate(kp.Child("pemFrom"))...)
		}
		if err := checkPublicKey(a.Key.PEM); err != nil {
			errs = append(errs, field.Invalid(kp.Child("pem"), "(PEM)", err.Error()))
		}
		return errs
	}
	k, kp := a.Keyless, p.Child("keyless")
	for _, pair := range []struct{ exact, re, name string }{{k.Issuer, k.IssuerRegExp, "issuer"}, {k.Subject, k.SubjectRegExp, "subject"}} {
		if (pair.exact == "") == (pair.re == "") {
			errs = append(errs, field.Required(kp.Child(pair.name), fmt.Sprintf("set exactly one of %s or %sRegExp", pair.name, pair.name)))
		}
		if pair.re != "" {
			if _, err := regexp.Compile(pair.re); err != nil {
				errs = append(errs, field.Invalid(kp.Child(pair.name+"RegExp"), pair.re, err.Error()))
			}
		}
	}
	switch {
	case count(k.TrustedRoot != "", k.TrustedRootFrom != nil, k.TUF != nil) != 1:
		errs = append(errs, field.Required(kp.Child("trustedRoot"), "set exactly one of trustedRoot, trustedRootFrom or tuf"))
	case k.TUF != nil:
		errs = append(errs, k.TUF.validate(kp.Child("tuf"))...)
	case k.TrustedRootFrom != nil:
		errs = append(errs, k.TrustedRootFrom.validate(kp.Child("trustedRootFrom"))...)
	default:
		if err := checkTrustedRoot(k.TrustedRoot); err != nil {
			errs = append(errs, field.Invalid(kp.Child("trustedRoot"), "(JSON)", err.Error()))
		}
	}
	return errs
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func (n *NotationAuthority) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case (n.Certificates == "") == (n.CertificatesFrom == nil):
		errs = append(errs, field.Required(p.Child("certificates"), "set exactly one of certificates or certificatesFrom"))
	case n.CertificatesFrom != nil:
		errs = append(errs, n.CertificatesFrom.validate(p.Child("certificatesFrom"))...)
	default:
		if err := checkCertificates(n.Certificates); err != nil {
			errs = append(errs, field.Invalid(p.Child("certificates"), "(PEM)", err.Error()))
		}
	}
	if len(n.TrustedIdentities) == 0 {
		errs = append(errs, field.Required(p.Child("trustedIdentities"), `who may sign: "x509.subject: ..." or "*" for any certificate chaining to the CA`))
	}
	for i, id := range n.TrustedIdentities {
		if id == "*" {
			if len(n.TrustedIdentities) > 1 {
				errs = append(errs, field.Invalid(p.Child("trustedIdentities").Index(i), id, `"*" stands alone`))
			}
			continue
		}
		if v, ok := strings.CutPrefix(id, "x509.subject:"); !ok || strings.TrimSpace(v) == "" {
			errs = append(errs, field.Invalid(p.Child("trustedIdentities").Index(i), id, `"x509.subject: <distinguished name>" or "*"`))
		}
	}
	return errs
}

// ParseCertificates reads PEM certificates (at least one, nothing else).
func ParseCertificates(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM block of type %q, not CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return out, nil
}

func checkCertificates(s string) error {
	_, err := ParseCertificates(s)
	return err
}

// checkPublicKey says why s is not a usable public key, if it is not.
func checkPublicKey(s string) error {
	_, err := ParsePublicKey(s)
	return err
}

// checkTrustedRoot says why s is not a Sigstore trusted root, if it is
// not (its form only: sigstore-go reads the rest when verifying).
func checkTrustedRoot(s string) error {
	var root struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal([]byte(s), &root); err != nil || !strings.HasPrefix(root.MediaType, "application/vnd.dev.sigstore.trustedroot") {
		return fmt.Errorf("a Sigstore trusted_root.json (mediaType application/vnd.dev.sigstore.trustedroot...)")
	}
	return nil
}

// ParsePublicKey reads a PEM public key (PKIX: ECDSA, RSA or Ed25519).
func ParsePublicKey(s string) (any, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	return x509.ParsePKIXPublicKey(b.Bytes)
}

// Covers returns the indexes of the trust entries whose globs match ref.
func (r *ImageSignaturesParams) Covers(ref string) []int {
	return covering(r.Trust, func(tr ImageTrust) []string { return tr.Images }, ref)
}

// ImageSignatures returns the policy's imageSignatures parameters when
// the rule is in force with at least one trust entry: what the caller
// must verify before judging.
func ImageSignatures(p *v1alpha1.Policy) (*ImageSignaturesParams, bool) {
	if EffectiveAction(p, "imageSignatures") == v1alpha1.ActionOff {
		return nil, false
	}
	ps := params[*ImageSignaturesParams](p, "imageSignatures")
	return ps, len(ps.Trust) > 0
}

func newImageSignatures(p *v1alpha1.Policy) Rule {
	ps := params[*ImageSignaturesParams](p, "imageSignatures")
	summary := "no trust entry: no image signature is verified"
	if n := len(ps.Trust); n > 0 {
		summary = fmt.Sprintf("images of %d trust %s carry a valid signature", n, map[bool]string{true: "entry", false: "entries"}[n == 1])
	}
	return Rule{
		ID:      "imageSignatures",
		Summary: summary,
		Check: func(t *podspec.Target) []Finding {
			if len(ps.Trust) == 0 {
				return nil // the common case: nothing configured, nothing to list
			}
			var out []Finding
			for _, img := range t.Images() {
				for _, i := range ps.Covers(img.Reference) {
					if f, bad := judgeSignature(t.ImageVerdicts, img, i, ps.Trust[i]); bad {
						out = append(out, f)
					}
				}
			}
			return out
		},
	}
}

// judgeSignature turns one verdict into a finding, if it calls for one.
func judgeSignature(verdicts imagetrust.Verdicts, img podspec.Image, i int, tr ImageTrust) (Finding, bool) {
	f := Finding{Type: field.ErrorTypeForbidden, Field: img.Path.String()}
	who := tr.authorityNames()
	if verdicts == nil {
		f.Advisory = true
		f.Message = fmt.Sprintf("%s image %q: signature not verified here (offline)", img.Of(), img.Reference)
		f.Fix = "run podguard validate --verify-images to verify it as the webhook will"
		return f, true
	}
	v, ok := verdicts[imagetrust.Key{Ref: img.Reference, Trust: i}]
	switch {
	case !ok:
		f.Message = fmt.Sprintf("%s image %q could not be verified in time", img.Of(), img.Reference)
		f.Fix = "retry: the verification did not finish within the request's budget"
	case v.Status == imagetrust.Verified:
		return f, false
	case v.Status == imagetrust.Stale:
		f.Advisory = true
		// Warnings are cut at 256 characters: what happened first, the
		// long reference last.
		f.Message = fmt.Sprintf("admitted on its verification of %s, its registry cannot be reached: %s image %q (%s)", v.VerifiedAt.UTC().Format(time.RFC3339), img.Of(), img.Reference, v.Detail)
		f.Fix = "nothing to change in the manifest; the platform team may check the registry"
	case v.Status == imagetrust.Unreachable:
		f.Message = fmt.Sprintf("%s image %q could not be verified: the registry was unreachable (%s), and the image was not verified before", img.Of(), img.Reference, v.Detail)
		f.Fix = "retry when the registry answers; this does not mean that the image is unsigned"
	default:
		f.Message = fmt.Sprintf("%s image %q (%s) has no valid signature by %s: %s", img.Of(), img.Reference, v.Digest, who, v.Detail)
		f.Fix = fmt.Sprintf("sign the image's digest (cosign sign --key ... %s@%s) or use a signed image", nameOnly(img.Reference), v.Digest)
	}
	return f, true
}

func (tr ImageTrust) authorityNames() string {
	var names []string
	for _, a := range tr.Authorities {
		names = append(names, fmt.Sprintf("%q", a.Name))
	}
	if tr.Require == RequireAll {
		return "all of " + strings.Join(names, ", ")
	}
	if len(names) == 1 {
		return names[0]
	}
	return "any of " + strings.Join(names, ", ")
}

// nameOnly drops a reference's tag and digest, for a command line.
func nameOnly(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func nativeImageSignatures(*v1alpha1.Policy, NativeMode) Native {
	return Native{WebhookOnly: "signatures are read from the registry and verified at admission, which CEL cannot do"}
}
