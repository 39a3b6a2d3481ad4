package rules

// imageVulnerabilities: the images a scan entry covers carry a signed
// vulnerability-scan attestation of their digest, by one of its
// authorities, no older than maxAge, with no finding at or above
// maxSeverity unless allowedVulnerabilities lists it (with a reason and an
// expiry). The write-up's "scan images", made a condition of admission.
// Supported forms, as Sigstore bundles (OCI referrers), both with a
// standard place for the scan time and for per-finding severities: the
// cosign vuln predicate (https://cosign.sigstore.dev/attestation/vuln/v1)
// with a Trivy JSON report as its scanner result (`trivy image --format
// cosign-vuln`, `cosign attest --type vuln`), and a CycloneDX BOM with
// vulnerabilities (https://cyclonedx.org/bom: `trivy image --format
// cyclonedx --scanners vuln` or `grype -o cyclonedx-json`, `cosign attest
// --type cyclonedx`), whose VEX analysis states can mark a listed
// vulnerability not affected. SARIF is not read: no registered predicate
// type, no standard scan time, tool-specific severities.
// The rule does no I/O: the caller verifies the attestation and hands over
// what it reports (imagetrust.ScanReport); the rule judges age, severities
// and allowances, so a new finding or an expired allowance takes effect at
// the next admission without a new scan. Offline it notes the images as
// not verified. Natively webhook-only.

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/podspec"
)

// ItemScannedImages is the write-up's "scan images".
var ItemScannedImages = ChecklistItem{ID: "scannedImages", Title: "Scanned images (a signed vulnerability scan, recent, within a severity threshold)", Order: 106}

// The in-toto predicate types of the scan attestations read.
const (
	// VulnPredicate is cosign's vulnerability attestation (cosign attest
	// --type vuln).
	VulnPredicate = "https://cosign.sigstore.dev/attestation/vuln/v1"
	// CycloneDXPredicate is a CycloneDX BOM (cosign attest --type
	// cyclonedx); it counts as a scan when it has a vulnerabilities array.
	CycloneDXPredicate = "https://cyclonedx.org/bom"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"*containers.image", "volumes.image"},
		ID:    "imageVulnerabilities", Order: 217, Action: v1alpha1.ActionEnforce,
		Checklist: ItemScannedImages, PlatformOnly: true,
		Doc: `Images matching a scan entry's globs carry a vulnerability-scan
attestation of their digest (cosign attest --type vuln with a Trivy
report, or --type cyclonedx with a CycloneDX BOM's vulnerabilities, as a
Sigstore bundle) signed by one of its authorities, at most maxAge
old, with no finding at or above maxSeverity but those
allowedVulnerabilities lists until they expire. Verified at admission by
the webhook; nothing is verified until a scan entry exists.`,
		Example: `scans:
- images: ["registry.example/team/*"]
  maxAge: 7d
  maxSeverity: high
  authorities:
  - name: scanner
    key:
      pem: |
        -----BEGIN PUBLIC KEY-----
        ...
        -----END PUBLIC KEY-----
  allowedVulnerabilities:
  - id: CVE-2024-12345
    reason: not reachable from our code path (SEC-123)
    expires: "2027-01-31"`,
		Params: func() v1alpha1.RuleParams { return &ImageVulnerabilitiesParams{} },
		New:    newImageVulnerabilities,
		Native: func(*v1alpha1.Policy, NativeMode) Native {
			return Native{WebhookOnly: "scan attestations are read from the registry and verified at admission, which CEL cannot do"}
		},
	})
}

// ImageVulnerabilitiesParams are the imageVulnerabilities rule's
// parameters.
type ImageVulnerabilitiesParams struct {
	// Scans lists which images need whose scan attestations. An image
	// matching several entries must satisfy each. Empty (the default):
	// nothing is verified.
	Scans []ImageScan `json:"scans,omitempty"`
	VerdictCache
}

// ImageScan is one entry of imageVulnerabilities' scans list.
type ImageScan struct {
	// Images are globs over the image reference as written.
	Images []string `json:"images"`
	// Authorities may sign the scan attestation (any one suffices).
	Authorities []Authority `json:"authorities"`
	// MaxAge is how old the scan may be (days, 7d, or a Go duration);
	// default 7d.
	MaxAge string `json:"maxAge,omitempty"`
	// MaxSeverity is the lowest severity that denies: critical, high,
	// medium or low; default critical.
	MaxSeverity string `json:"maxSeverity,omitempty"`
	// AllowedVulnerabilities are findings that do not deny, each until it
	// expires.
	AllowedVulnerabilities []AllowedVulnerability `json:"allowedVulnerabilities,omitempty"`
}

// AllowedVulnerability is one accepted finding.
type AllowedVulnerability struct {
	// ID is the vulnerability's ID as the scanner reports it (CVE-...,
	// GHSA-...).
	ID string `json:"id"`
	// Reason says why it is accepted.
	Reason string `json:"reason"`
	// Expires (a date or an RFC 3339 time) ends the allowance: required.
	Expires string `json:"expires"`
}

// severities in increasing order; unknown ranks below low.
var severities = []string{"unknown", "low", "medium", "high", "critical"}

// SeverityRank ranks a severity as scanners write it (case aside;
// negligible counts as low); unknown severities rank 0.
func SeverityRank(s string) int {
	s = strings.ToLower(s)
	if s == "negligible" {
		s = "low"
	}
	return max(0, slices.Index(severities, s))
}

// Default fills maxAge, maxSeverity, staleIfError and verdictTTL.
func (r *ImageVulnerabilitiesParams) Default() {
	r.defaultCache()
	for i := range r.Scans {
		if r.Scans[i].MaxAge == "" {
			r.Scans[i].MaxAge = "7d"
		}
		if r.Scans[i].MaxSeverity == "" {
			r.Scans[i].MaxSeverity = "critical"
		}
	}
}

// Validate checks every entry.
func (r *ImageVulnerabilitiesParams) Validate(path *field.Path) field.ErrorList {
	errs := r.validateCache(path)
	for i, sc := range r.Scans {
		p := path.Child("scans").Index(i)
		errs = append(errs, validateEntry(p, sc.Images, sc.Authorities, "the scan attestations")...)
		for j, a := range sc.Authorities {
			if a.Notation != nil {
				errs = append(errs, field.Forbidden(p.Child("authorities").Index(j).Child("notation"),
					"scan attestations are read from Sigstore bundles (cosign attest): name the key or keyless identity that signs them"))
			}
		}
		if v, err := v1alpha1.ParseDuration(sc.MaxAge); err != nil || v <= 0 {
			errs = append(errs, field.Invalid(p.Child("maxAge"), sc.MaxAge, "a positive duration: days (7d) or a Go duration (168h)"))
		}
		if SeverityRank(sc.MaxSeverity) == 0 {
			errs = append(errs, field.NotSupported(p.Child("maxSeverity"), sc.MaxSeverity, severities[1:]))
		}
		for j, a := range sc.AllowedVulnerabilities {
			ap := p.Child("allowedVulnerabilities").Index(j)
			if a.ID == "" {
				errs = append(errs, field.Required(ap.Child("id"), "the vulnerability's ID (CVE-...)"))
			}
			if strings.TrimSpace(a.Reason) == "" {
				errs = append(errs, field.Required(ap.Child("reason"), "why it is accepted"))
			}
			if _, err := v1alpha1.ParseExpiry(a.Expires); a.Expires == "" || err != nil {
				errs = append(errs, field.Invalid(ap.Child("expires"), a.Expires, "a date (YYYY-MM-DD) or an RFC 3339 time: every allowance ends"))
			}
		}
	}
	return errs
}

// Covers returns the indexes of the scan entries whose globs match ref.
func (r *ImageVulnerabilitiesParams) Covers(ref string) []int {
	return covering(r.Scans, func(sc ImageScan) []string { return sc.Images }, ref)
}

// ImageVulnerabilities returns the policy's imageVulnerabilities
// parameters when the rule is in force with at least one scan entry.
func ImageVulnerabilities(p *v1alpha1.Policy) (*ImageVulnerabilitiesParams, bool) {
	if EffectiveAction(p, "imageVulnerabilities") == v1alpha1.ActionOff {
		return nil, false
	}
	ps := params[*ImageVulnerabilitiesParams](p, "imageVulnerabilities")
	return ps, len(ps.Scans) > 0
}

func newImageVulnerabilities(p *v1alpha1.Policy) Rule {
	ps := params[*ImageVulnerabilitiesParams](p, "imageVulnerabilities")
	summary := "no scan entry: no scan attestation is verified"
	if n := len(ps.Scans); n > 0 {
		summary = fmt.Sprintf("images of %d scan %s carry a recent signed scan within the severity threshold", n, map[bool]string{true: "entry", false: "entries"}[n == 1])
	}
	return Rule{
		ID:      "imageVulnerabilities",
		Summary: summary,
		Check: func(t *podspec.Target) []Finding {
			if len(ps.Scans) == 0 {
				return nil // the common case: nothing configured, nothing to list
			}
			var out []Finding
			for _, img := range t.Images() {
				for _, i := range ps.Covers(img.Reference) {
					if f, bad := judgeScan(t, img, i, ps.Scans[i]); bad {
						out = append(out, f)
					}
				}
			}
			return out
		},
	}
}

// maxListed bounds the IDs a message names.
const maxListed = 5

func judgeScan(t *podspec.Target, img podspec.Image, i int, sc ImageScan) (Finding, bool) {
	f := Finding{Type: field.ErrorTypeForbidden, Field: img.Path.String()}
	if t.ImageScans == nil {
		f.Advisory = true
		f.Message = fmt.Sprintf("%s image %q: vulnerability scan not verified here (offline)", img.Of(), img.Reference)
		f.Fix = "run podguard validate --verify-images to verify it as the webhook will"
		return f, true
	}
	v, ok := t.ImageScans[imagetrust.Key{Ref: img.Reference, Trust: i}]
	switch {
	case !ok:
		f.Message = fmt.Sprintf("%s image %q: its scan attestation could not be verified in time", img.Of(), img.Reference)
		f.Fix = "retry: the verification did not finish within the request's budget"
		return f, true
	case v.Status == imagetrust.Unreachable:
		f.Message = fmt.Sprintf("%s image %q: its scan attestation could not be read: the registry was unreachable (%s)", img.Of(), img.Reference, v.Detail)
		f.Fix = "retry when the registry answers; this does not mean that the image is unscanned"
		return f, true
	case v.Status == imagetrust.Unsigned || v.Scan == nil:
		f.Message = fmt.Sprintf("%s image %q (%s) has no vulnerability-scan attestation signed by %s: %s", img.Of(), img.Reference, v.Digest, ImageTrust{Authorities: sc.Authorities}.authorityNames(), v.Detail)
		f.Fix = fmt.Sprintf("scan the digest and attest the report: trivy image --format cosign-vuln -o vuln.json %s@%s; cosign attest --type vuln --predicate vuln.json --new-bundle-format ...", nameOnly(img.Reference), v.Digest)
		return f, true
	}
	maxAge, _ := v1alpha1.ParseDuration(sc.MaxAge)
	if age := t.Now.Sub(v.Scan.FinishedAt); age > maxAge {
		f.Message = fmt.Sprintf("%s image %q: its latest signed scan finished %s, over maxAge %s ago", img.Of(), img.Reference, v.Scan.FinishedAt.UTC().Format(time.RFC3339), sc.MaxAge)
		f.Fix = "scan the image again and attest the new report"
		return f, true
	}
	threshold := SeverityRank(sc.MaxSeverity)
	var over []string
	for _, vu := range v.Scan.Vulnerabilities {
		if SeverityRank(vu.Severity) < threshold || allowed(sc.AllowedVulnerabilities, vu.ID, t.Now) {
			continue
		}
		over = append(over, vu.ID+" ("+strings.ToLower(vu.Severity)+")")
	}
	if len(over) > 0 {
		n := len(over)
		if n > maxListed {
			over = append(over[:maxListed], fmt.Sprintf("and %d more", n-maxListed))
		}
		f.Message = fmt.Sprintf("%s image %q: %d %s at or above %s: %s", img.Of(), img.Reference, n, map[bool]string{true: "vulnerability", false: "vulnerabilities"}[n == 1], sc.MaxSeverity, strings.Join(over, ", "))
		f.Fix = "rebuild on a patched base image, or have the platform team list the finding in allowedVulnerabilities with a reason and an expiry"
		return f, true
	}
	if v.Status == imagetrust.Stale {
		f.Advisory = true
		f.Message = fmt.Sprintf("admitted on its verification of %s, its registry cannot be reached: %s image %q", v.VerifiedAt.UTC().Format(time.RFC3339), img.Of(), img.Reference)
		f.Fix = "nothing to change in the manifest; the platform team may check the registry"
		return f, true
	}
	return f, false
}

func allowed(list []AllowedVulnerability, id string, now time.Time) bool {
	for _, a := range list {
		if a.ID != id {
			continue
		}
		until, err := v1alpha1.ParseExpiry(a.Expires)
		if err == nil && now.Before(until) {
			return true
		}
	}
	return false
}
