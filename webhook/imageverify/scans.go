package imageverify

// Vulnerability-scan attestations: which predicates are read, and how
// each becomes the imagetrust.ScanReport the imageVulnerabilities rule
// judges.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/rules"
)

// scanPredicates read the scan attestations podguard supports, by
// in-toto predicate type. SARIF is not among them: it has no registered
// predicate type (each tool attests it under one of its own), no standard
// place for when the scan ran, and its severities are tool-specific
// properties, so a verdict read from it would depend on which scanner
// wrote it.
var scanPredicates = map[string]func([]byte) (*imagetrust.ScanReport, error){
	rules.VulnPredicate:      parseVulnPredicate,
	rules.CycloneDXPredicate: parseCycloneDX,
}

// maxVulnerabilities bounds what a cached scan report keeps: the most
// severe first, so a cut never hides a finding above one it keeps.
const maxVulnerabilities = 4096

// judgeScan finds the newest scan attestation of digest d signed by one
// of the authorities.
func (v *Verifier) judgeScan(set *signatureSet, d v1.Hash, authorities []rules.Authority) imagetrust.Verdict {
	var best *imagetrust.ScanReport
	var signer string
	var reasons []string
	for _, pa := range authorities {
		a, err := v.authority(pa)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", pa.Name, err))
			continue
		}
		if len(set.bundles) == 0 {
			reasons = append(reasons, a.name+": no attestation found")
		}
		for _, b := range set.bundles {
			res, err := a.verifyBundle(b, d)
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("%s: bundle: %v", a.name, err))
				continue
			}
			if res.Statement == nil {
				continue
			}
			parse, ok := scanPredicates[res.Statement.GetPredicateType()]
			if !ok {
				continue // a signature, or another attestation
			}
			rep, err := parseStatement(parse, res.Statement.GetPredicate())
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("%s: scan attestation %s: %v", a.name, res.Statement.GetPredicateType(), err))
				continue
			}
			if best == nil || rep.FinishedAt.After(best.FinishedAt) {
				best, signer = rep, a.name
			}
		}
	}
	if best != nil {
		return imagetrust.Verdict{Status: imagetrust.Verified, Signers: []string{signer}, Scan: best}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no vulnerability-scan attestation (predicate "+rules.VulnPredicate+" or "+rules.CycloneDXPredicate+") found")
	}
	return imagetrust.Verdict{Status: imagetrust.Unsigned, Detail: truncate(strings.Join(reasons, "; "))}
}

// parseStatement reads a verified statement's predicate with parse.
func parseStatement(parse func([]byte) (*imagetrust.ScanReport, error), predicate proto.Message) (*imagetrust.ScanReport, error) {
	data, err := protojson.Marshal(predicate)
	if err != nil {
		return nil, err
	}
	return parse(data)
}

// parseVulnPredicate reads cosign's vuln predicate whose scanner result
// is a Trivy JSON report (trivy image --format cosign-vuln).
func parseVulnPredicate(data []byte) (*imagetrust.ScanReport, error) {
	var p struct {
		Scanner struct {
			URI     string          `json:"uri"`
			Version string          `json:"version"`
			Result  json.RawMessage `json:"result"`
		} `json:"scanner"`
		Metadata struct {
			ScanFinishedOn time.Time `json:"scanFinishedOn"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	if p.Metadata.ScanFinishedOn.IsZero() {
		return nil, fmt.Errorf("no metadata.scanFinishedOn")
	}
	var trivy struct {
		Results *[]struct {
			Vulnerabilities []struct {
				VulnerabilityID string `json:"VulnerabilityID"`
				Severity        string `json:"Severity"`
			} `json:"Vulnerabilities"`
		} `json:"Results"`
	}
	if err := json.Unmarshal(p.Scanner.Result, &trivy); err != nil || trivy.Results == nil {
		return nil, fmt.Errorf("scanner.result is not a Trivy JSON report (Results[].Vulnerabilities[])")
	}
	worst := map[string]string{}
	for _, r := range *trivy.Results {
		for _, vu := range r.Vulnerabilities {
			if vu.VulnerabilityID == "" {
				continue
			}
			sev := strings.ToLower(vu.Severity)
			if prev, ok := worst[vu.VulnerabilityID]; !ok || rules.SeverityRank(sev) > rules.SeverityRank(prev) {
				worst[vu.VulnerabilityID] = sev
			}
		}
	}
	rep := &imagetrust.ScanReport{Scanner: strings.TrimSpace(p.Scanner.URI + " " + p.Scanner.Version), FinishedAt: p.Metadata.ScanFinishedOn.UTC()}
	return findings(rep, worst), nil
}

// findings sets rep's findings from worst (ID -> severity), the most
// severe first and within maxVulnerabilities, and returns rep.
func findings(rep *imagetrust.ScanReport, worst map[string]string) *imagetrust.ScanReport {
	for id, sev := range worst {
		rep.Vulnerabilities = append(rep.Vulnerabilities, imagetrust.Vulnerability{ID: id, Severity: sev})
	}
	sort.Slice(rep.Vulnerabilities, func(i, j int) bool {
		a, b := rep.Vulnerabilities[i], rep.Vulnerabilities[j]
		if ra, rb := rules.SeverityRank(a.Severity), rules.SeverityRank(b.Severity); ra != rb {
			return ra > rb
		}
		return a.ID < b.ID
	})
	if len(rep.Vulnerabilities) > maxVulnerabilities {
		rep.Vulnerabilities = rep.Vulnerabilities[:maxVulnerabilities]
	}
	return rep
}

// vexNotAffected are the CycloneDX analysis states in which the BOM's
// author says a listed vulnerability does not apply to the image: the
// VEX part of CycloneDX-VEX. A finding in one of them is not counted, as
// the signed statement of the same authority whose scan is trusted.
var vexNotAffected = map[string]bool{"not_affected": true, "false_positive": true, "resolved": true, "resolved_with_pedigree": true}

// parseCycloneDX reads a CycloneDX BOM with vulnerabilities (trivy image
// --format cyclonedx --scanners vuln, grype -o cyclonedx-json, attested
// with cosign attest --type cyclonedx): the scan time is
// metadata.timestamp, each vulnerabilities[] entry a finding at the worst
// severity its ratings give, unless its analysis.state says it does not
// apply. A BOM without a vulnerabilities array is an SBOM, not a scan:
// refused, so an SBOM attested by the same key never reads as a clean
// scan.
func parseCycloneDX(data []byte) (*imagetrust.ScanReport, error) {
	var bom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Timestamp time.Time       `json:"timestamp"`
			Tools     json.RawMessage `json:"tools"`
		} `json:"metadata"`
		Vulnerabilities *[]struct {
			ID      string `json:"id"`
			Ratings []struct {
				Severity string `json:"severity"`
			} `json:"ratings"`
			Analysis struct {
				State string `json:"state"`
			} `json:"analysis"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &bom); err != nil {
		return nil, err
	}
	if bom.BOMFormat != "CycloneDX" {
		return nil, fmt.Errorf("bomFormat is %q, not CycloneDX", bom.BOMFormat)
	}
	if bom.Vulnerabilities == nil {
		return nil, fmt.Errorf("no vulnerabilities array: an SBOM, not a vulnerability scan")
	}
	if bom.Metadata.Timestamp.IsZero() {
		return nil, fmt.Errorf("no metadata.timestamp")
	}
	rep := &imagetrust.ScanReport{Scanner: cycloneDXTools(bom.Metadata.Tools), FinishedAt: bom.Metadata.Timestamp.UTC()}
	worst := map[string]string{}
	for _, vu := range *bom.Vulnerabilities {
		if vu.ID == "" {
			continue
		}
		if vexNotAffected[vu.Analysis.State] {
			rep.NotAffected++
			continue
		}
		sev := "unknown"
		for _, r := range vu.Ratings {
			if s := strings.ToLower(r.Severity); rules.SeverityRank(s) > rules.SeverityRank(sev) {
				sev = s
			}
		}
		if prev, ok := worst[vu.ID]; !ok || rules.SeverityRank(sev) > rules.SeverityRank(prev) {
			worst[vu.ID] = sev
		}
	}
	return findings(rep, worst), nil
}

// cycloneDXTools names the tools of a BOM's metadata, in either form the
// specification has had: a list of tools (1.4) or {components: [...]}
// (1.5 on).
func cycloneDXTools(raw json.RawMessage) string {
	type tool struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	var list []tool
	if err := json.Unmarshal(raw, &list); err != nil {
		var obj struct {
			Components []tool `json:"components"`
		}
		if json.Unmarshal(raw, &obj) == nil {
			list = obj.Components
		}
	}
	var names []string
	for _, t := range list {
		names = append(names, strings.TrimSpace(t.Name+" "+t.Version))
	}
	return strings.Join(names, ", ")
}
