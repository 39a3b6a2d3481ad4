// Package imagetrust holds what a verifier found out about an image, in
// the form the image rules read it: the engine does no I/O, so the caller
// (the webhook, podguard validate --verify-images) verifies the images a
// pod runs and hands the verdicts over with the request.
package imagetrust

import "time"

// Key names one verification: an image reference as the pod spec writes
// it, against one entry of imageSignatures' trust list or of
// imageVulnerabilities' scans list (its index).
type Key struct {
	Ref   string
	Trust int
}

// Status is the outcome of one verification.
type Status string

const (
	// Verified: a signature of the image's digest by the authorities the
	// trust entry requires (for a scan entry: a scan attestation of the
	// digest by one of its authorities).
	Verified Status = "verified"
	// Stale: the registry or the signature store could not be reached,
	// and the digest was verified within staleIfError: admitted, with a
	// warning.
	Stale Status = "stale"
	// Unsigned: the registry answered, and no signature it holds satisfies
	// the trust entry.
	Unsigned Status = "unsigned"
	// Unreachable: the registry could not be asked (down, slow, refused)
	// and the digest was never verified, or longer ago than staleIfError.
	Unreachable Status = "unreachable"
)

// Verdict is what verifying one image against one trust entry came to.
type Verdict struct {
	// Digest is the digest verified (sha256:...); empty when the reference
	// could not be resolved.
	Digest string `json:"digest,omitempty"`
	Status Status `json:"status"`
	// Signers are the names of the authorities whose signature verified.
	Signers []string `json:"signers,omitempty"`
	// Detail says why the image is not verified (each authority's reason),
	// or what could not be reached.
	Detail string `json:"detail,omitempty"`
	// VerifiedAt is when the digest was last verified (for a Stale verdict,
	// the verification it is admitted on).
	VerifiedAt time.Time `json:"verifiedAt,omitzero"`
	// Scan is the verified scan attestation, for imageVulnerabilities'
	// verdicts (Verified or Stale); nil for imageSignatures'.
	Scan *ScanReport `json:"scan,omitempty"`
}

// Verdicts are the verdicts of one request.
type Verdicts map[Key]Verdict

// ScanReport is what a verified vulnerability-scan attestation says, for
// imageVulnerabilities: the verifier extracts it, the rule judges it
// (age, severities, allowed vulnerabilities) under the policy.
type ScanReport struct {
	// Scanner names the scanner (its URI and version).
	Scanner string `json:"scanner,omitempty"`
	// FinishedAt is when the scan finished, as the attestation says.
	FinishedAt time.Time `json:"finishedAt"`
	// Vulnerabilities are the findings, each once.
	Vulnerabilities []Vulnerability `json:"vulnerabilities,omitempty"`
	// NotAffected counts the vulnerabilities the attestation lists but
	// says do not apply to the image (a CycloneDX-VEX analysis state of
	// not_affected, false_positive or resolved): not findings.
	NotAffected int `json:"notAffected,omitempty"`
}

// Vulnerability is one finding of a scan.
type Vulnerability struct {
	ID string `json:"id"`
	// Severity is lowercase: critical, high, medium, low, or unknown.
	Severity string `json:"severity"`
}

// ImageConfig is what an image's config declares that the rules read
// (runAsUser's imageUser): who it runs as, what it listens on and where it
// keeps data, as its Dockerfile's USER, EXPOSE and VOLUME said.
type ImageConfig struct {
	// User is the config's User ("" for none: root).
	User string `json:"user,omitempty"`
	// ExposedPorts are its exposed ports as the config writes them
	// ("80/tcp"), sorted.
	ExposedPorts []string `json:"exposedPorts,omitempty"`
	// Volumes are the paths it declares volumes at, sorted.
	Volumes []string `json:"volumes,omitempty"`
}
