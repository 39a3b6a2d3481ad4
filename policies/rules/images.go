package rules

// What the image rules (imageSignatures, imageVulnerabilities) share: the
// settings of the verifier's cache and the validation and matching of an
// entry's images and authorities.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/exemption"
)

// VerdictCache are the verifier's cache settings of an image rule.
type VerdictCache struct {
	// StaleIfError is how long after its last verification a digest is
	// still admitted while its registry cannot be reached (a warning says
	// so). Days (1d) or a Go duration (24h); default 24h; 0s turns it off.
	StaleIfError string `json:"staleIfError,omitempty"`
	// VerdictTTL is how long a verdict is reused before the registry is
	// read again (a revoked signature or key takes effect within it).
	// Default 10m.
	VerdictTTL string `json:"verdictTTL,omitempty"`
}

func (c *VerdictCache) defaultCache() {
	if c.StaleIfError == "" {
		c.StaleIfError = "24h"
	}
	if c.VerdictTTL == "" {
		c.VerdictTTL = "10m"
	}
}

func (c VerdictCache) validateCache(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, d := range []struct{ name, v string }{{"staleIfError", c.StaleIfError}, {"verdictTTL", c.VerdictTTL}} {
		if v, err := v1alpha1.ParseDuration(d.v); err != nil || v < 0 {
			errs = append(errs, field.Invalid(path.Child(d.name), d.v, "a duration: days (1d) or a Go duration (24h, 10m)"))
		}
	}
	return errs
}

// Durations returns staleIfError and verdictTTL of defaulted, validated
// parameters.
func (c VerdictCache) Durations() (staleIfError, verdictTTL time.Duration) {
	staleIfError, _ = v1alpha1.ParseDuration(c.StaleIfError)
	verdictTTL, _ = v1alpha1.ParseDuration(c.VerdictTTL)
	return staleIfError, verdictTTL
}

// validateEntry checks an entry's image globs and its authorities;
// authoritiesFor says what they sign, for the message of a missing list.
func validateEntry(p *field.Path, images []string, authorities []Authority, authoritiesFor string) field.ErrorList {
	var errs field.ErrorList
	if len(images) == 0 {
		errs = append(errs, field.Required(p.Child("images"), "the image globs this entry covers"))
	}
	for j, g := range images {
		if g == "" {
			errs = append(errs, field.Invalid(p.Child("images").Index(j), g, "an empty glob matches nothing"))
		}
	}
	if len(authorities) == 0 {
		errs = append(errs, field.Required(p.Child("authorities"), "who may sign "+authoritiesFor))
	}
	names := sets.New[string]()
	for j, a := range authorities {
		errs = append(errs, a.validate(p.Child("authorities").Index(j), names)...)
	}
	return errs
}

// covering returns the indexes of the entries whose image globs match ref.
func covering[E any](entries []E, images func(E) []string, ref string) []int {
	var out []int
	for i, e := range entries {
		if exemption.MatchesAny(images(e), ref) {
			out = append(out, i)
		}
	}
	return out
}

// TrustSource names trust material (a PEM key, a trusted root) kept in a
// ConfigMap or a Secret in podguard's namespace rather than in the policy:
// one of the two references, as in a container's env valueFrom.
type TrustSource struct {
	// ConfigMapKeyRef is a key of a ConfigMap.
	ConfigMapKeyRef *ObjectKeyRef `json:"configMapKeyRef,omitempty"`
	// SecretKeyRef is a key of a Secret.
	SecretKeyRef *ObjectKeyRef `json:"secretKeyRef,omitempty"`
}

// ObjectKeyRef is one key of a ConfigMap or Secret in podguard's namespace.
type ObjectKeyRef struct {
	// Name is the object's name.
	Name string `json:"name"`
	// Key is the key in its data.
	Key string `json:"key"`
}

// The kinds a TrustSource reads.
const (
	KindConfigMap = "ConfigMap"
	KindSecret    = "Secret"
)

// Ref returns the kind of object s reads and which key of which object.
func (s TrustSource) Ref() (kind string, ref ObjectKeyRef) {
	if s.SecretKeyRef != nil {
		return KindSecret, *s.SecretKeyRef
	}
	if s.ConfigMapKeyRef != nil {
		return KindConfigMap, *s.ConfigMapKeyRef
	}
	return "", ObjectKeyRef{}
}

// String names the source in messages: ConfigMap "name" key "key".
func (s TrustSource) String() string {
	kind, ref := s.Ref()
	return fmt.Sprintf("%s %q key %q", kind, ref.Name, ref.Key)
}

func (s TrustSource) validate(p *field.Path) field.ErrorList {
	if (s.ConfigMapKeyRef == nil) == (s.SecretKeyRef == nil) {
		return field.ErrorList{field.Required(p, "set exactly one of configMapKeyRef or secretKeyRef")}
	}
	var errs field.ErrorList
	kind, ref := s.Ref()
	rp := p.Child(map[string]string{KindConfigMap: "configMapKeyRef", KindSecret: "secretKeyRef"}[kind])
	for _, msg := range k8svalidation.IsDNS1123Subdomain(ref.Name) {
		errs = append(errs, field.Invalid(rp.Child("name"), ref.Name, msg))
	}
	for _, msg := range k8svalidation.IsConfigMapKey(ref.Key) {
		errs = append(errs, field.Invalid(rp.Child("key"), ref.Key, msg))
	}
	return errs
}

// sourced is what ResolveTrust read for one TrustSource.
type sourced struct {
	read bool
	data string
	err  error
}

func (s sourced) get(src *TrustSource) (string, error) {
	if !s.read {
		return "", fmt.Errorf("%s was not read: this program was not given the directory it is mounted in (--trust-dir)", src)
	}
	return s.data, s.err
}

// Material returns the public key's PEM, given inline or read from its
// source, or why there is none.
func (k *KeyAuthority) Material() (string, error) {
	if k.PEMFrom == nil {
		return k.PEM, nil
	}
	return k.from.get(k.PEMFrom)
}

// Material returns the trusted root's JSON, given inline or read from
// its source, or why there is none.
func (k *KeylessAuthority) Material() (string, error) {
	switch {
	case k.TUF != nil:
		if !k.TUF.fetched.read {
			return "", fmt.Errorf("the trusted root of TUF repository %s was not fetched: this program reads no TUF repository", k.TUF.URL)
		}
		return k.TUF.fetched.data, k.TUF.fetched.err
	case k.TrustedRootFrom != nil:
		return k.from.get(k.TrustedRootFrom)
	}
	return k.TrustedRoot, nil
}

// TUFSource is a TUF repository serving a Sigstore trusted_root.json (its
// target of that name), as the public good instance and private Sigstore
// deployments publish theirs: the trusted root follows the repository's
// rotations, verified by the TUF client from the root of trust given.
type TUFSource struct {
	// URL is the repository's base URL (https).
	URL string `json:"url"`
	// Root is the repository's initial root.json, the client's root of
	// trust (never fetched: no trust on first use); or RootFrom reads it
	// from a ConfigMap or Secret in podguard's namespace.
	Root     string       `json:"root,omitempty"`
	RootFrom *TrustSource `json:"rootFrom,omitempty"`
	// root is what RootFrom read; fetched the trusted root the TUF client
	// gave.
	root, fetched sourced
}

// TUFTarget is the target a TUF repository serves the trusted root as.
const TUFTarget = "trusted_root.json"

// TUFReader returns the TUF repository at url's trusted_root.json, its
// metadata verified from root (the initial root.json): the caller's
// client, with its own cache and network; the rules do no I/O.
type TUFReader func(url string, root []byte) ([]byte, error)

func (t *TUFSource) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if u, err := url.Parse(t.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, field.Invalid(p.Child("url"), t.URL, "the TUF repository's base URL, https://host[/path]"))
	}
	switch {
	case (t.Root == "") == (t.RootFrom == nil):
		errs = append(errs, field.Required(p.Child("root"), "set exactly one of root or rootFrom: the repository's initial root.json"))
	case t.RootFrom != nil:
		errs = append(errs, t.RootFrom.validate(p.Child("rootFrom"))...)
	default:
		if err := checkTUFRoot(t.Root); err != nil {
			errs = append(errs, field.Invalid(p.Child("root"), "(JSON)", err.Error()))
		}
	}
	return errs
}

// checkTUFRoot checks that s reads as TUF root metadata; the client
// verifies its signatures.
func checkTUFRoot(s string) error {
	var m struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil || m.Signed.Type != "root" {
		return fmt.Errorf("a TUF root.json (signed._type root)")
	}
	return nil
}

// Material returns the notation trust store's certificates (PEM), given
// inline or read from their source, or why there are none.
func (n *NotationAuthority) Material() (string, error) {
	if n.CertificatesFrom == nil {
		return n.Certificates, nil
	}
	return n.from.get(n.CertificatesFrom)
}

// Material returns the authority's key, trusted root or certificates.
func (a Authority) Material() (string, error) {
	switch {
	case a.Key != nil:
		return a.Key.Material()
	case a.Keyless != nil:
		return a.Keyless.Material()
	case a.Notation != nil:
		return a.Notation.Material()
	}
	return "", fmt.Errorf("authority %q has neither key nor keyless", a.Name)
}

// TrustReader reads one key of a ConfigMap or Secret (kind) in podguard's
// namespace: where the program finds them (a mounted directory) is the
// caller's business; the rules do no I/O.
type TrustReader func(kind, name, key string) ([]byte, error)

// ResolveTrust reads, with read, the material each authority of the image
// rules takes from a ConfigMap or Secret, and checks its form. It returns
// a digest of everything read (a caller reloads when it changes) and one
// error per source that could not be read or holds no usable material,
// with its field path.
//
// Such a source does not make the policy invalid: its authority cannot
// vouch for anything, so the images that need it are denied, saying why,
// and nothing else is. A missing ConfigMap then blocks the images it was
// to vouch for, not every pod in the cluster.
//
// A nil read leaves the sources unread and a nil tuf the TUF repositories
// unfetched: their authorities then say so when asked to verify.
func ResolveTrust(p *v1alpha1.Policy, read TrustReader, tuf TUFReader) (sum string, problems field.ErrorList) {
	h := sha256.New()
	resolve := func(path *field.Path, src *TrustSource, into *sourced, check func(string) error) {
		if read == nil {
			return
		}
		kind, ref := src.Ref()
		data, err := read(kind, ref.Name, ref.Key)
		if err == nil {
			err = check(string(data))
		}
		*into = sourced{read: true, data: string(data), err: err}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00", kind, ref.Name, ref.Key, len(data))
		h.Write(data)
		if err != nil {
			into.err = fmt.Errorf("%s: %w", src, err)
			// The source in the detail, not as a quoted value: it reads
			// as written in the policy.
			problems = append(problems, &field.Error{Type: field.ErrorTypeInvalid, Field: path.String(), BadValue: field.OmitValueType{}, Detail: into.err.Error()})
		}
	}
	eachTrustSource(p, resolve)
	if tuf != nil {
		eachAuthority(p, func(path *field.Path, a *Authority) {
			t := a.TUF()
			if t == nil {
				return
			}
			path = path.Child("keyless", "tuf")
			root, err := t.Root, error(nil)
			if t.RootFrom != nil {
				root, err = t.root.get(t.RootFrom)
			}
			var data []byte
			if err != nil {
				err = fmt.Errorf("root: %w", err)
			} else if data, err = tuf(t.URL, []byte(root)); err == nil {
				err = checkTrustedRoot(string(data))
			}
			t.fetched = sourced{read: true, data: string(data), err: err}
			fmt.Fprintf(h, "tuf\x00%s\x00%d\x00", t.URL, len(data))
			h.Write(data)
			if err != nil {
				t.fetched.err = fmt.Errorf("TUF repository %s: %w", t.URL, err)
				problems = append(problems, &field.Error{Type: field.ErrorTypeInvalid, Field: path.String(), BadValue: field.OmitValueType{}, Detail: t.fetched.err.Error()})
			}
		})
	}
	return hex.EncodeToString(h.Sum(nil)), problems
}

// UsesTUF reports whether an authority of the image rules reads its
// trusted root from a TUF repository (the caller refreshes it).
func UsesTUF(p *v1alpha1.Policy) bool {
	found := false
	eachAuthority(p, func(_ *field.Path, a *Authority) { found = found || a.TUF() != nil })
	return found
}

// TUF returns the authority's TUF repository, if its trusted root comes
// from one.
func (a *Authority) TUF() *TUFSource {
	if a.Keyless == nil {
		return nil
	}
	return a.Keyless.TUF
}

// TrustSources lists the ConfigMaps and Secrets the policy's image rules
// read (kind/name, sorted, each once): what must be mounted.
func TrustSources(p *v1alpha1.Policy) []string {
	seen := sets.New[string]()
	eachTrustSource(p, func(_ *field.Path, src *TrustSource, _ *sourced, _ func(string) error) {
		kind, ref := src.Ref()
		seen.Insert(strings.ToLower(kind) + "/" + ref.Name)
	})
	return sets.List(seen)
}

// eachTrustSource calls fn for each TrustSource of the image rules'
// authorities, with its path, where what is read for it goes, and the
// check of its form.
func eachTrustSource(p *v1alpha1.Policy, fn func(path *field.Path, src *TrustSource, into *sourced, check func(string) error)) {
	eachAuthority(p, func(ap *field.Path, a *Authority) {
		if k := a.Key; k != nil && k.PEMFrom != nil {
			fn(ap.Child("key", "pemFrom"), k.PEMFrom, &k.from, checkPublicKey)
		}
		if k := a.Keyless; k != nil && k.TrustedRootFrom != nil {
			fn(ap.Child("keyless", "trustedRootFrom"), k.TrustedRootFrom, &k.from, checkTrustedRoot)
		}
		if t := a.TUF(); t != nil && t.RootFrom != nil {
			fn(ap.Child("keyless", "tuf", "rootFrom"), t.RootFrom, &t.root, checkTUFRoot)
		}
		if n := a.Notation; n != nil && n.CertificatesFrom != nil {
			fn(ap.Child("notation", "certificatesFrom"), n.CertificatesFrom, &n.from, checkCertificates)
		}
	})
}

// eachAuthority calls fn for each authority of the image rules, with its
// path.
func eachAuthority(p *v1alpha1.Policy, fn func(path *field.Path, a *Authority)) {
	each := func(path *field.Path, as []Authority) {
		for i := range as {
			fn(path.Child("authorities").Index(i), &as[i])
		}
	}
	rulesPath := field.NewPath("rules")
	if ps := params[*ImageSignaturesParams](p, "imageSignatures"); ps != nil {
		for i := range ps.Trust {
			each(rulesPath.Child("imageSignatures", "trust").Index(i), ps.Trust[i].Authorities)
		}
	}
	if ps := params[*ImageVulnerabilitiesParams](p, "imageVulnerabilities"); ps != nil {
		for i := range ps.Scans {
			each(rulesPath.Child("imageVulnerabilities", "scans").Index(i), ps.Scans[i].Authorities)
		}
	}
}
