package imageverify

import (
	"encoding/json"
	"testing"

	"podguard.dev/podguard/policies/rules"
)

// FuzzAttestationParsing: what a registry serves (a scan predicate, a
// keyless legacy signature's annotations) is read without a panic, and a
// report read stays bounded and ordered, whatever it holds.
func FuzzAttestationParsing(f *testing.F) {
	f.Add([]byte(`{"bomFormat":"CycloneDX","metadata":{"timestamp":"2026-12-01T00:00:00Z","tools":{"components":[{"name":"trivy","version":"0.58.0"}]}},"vulnerabilities":[{"id":"CVE-1","ratings":[{"severity":"high"}],"analysis":{"state":"not_affected"}},{"id":"CVE-2","ratings":[{"severity":"low"},{"severity":"critical"}]}]}`),
		`{"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","integratedTime":1,"logIndex":2,"logID":"00"}}`)
	f.Add([]byte(`{"scanner":{"uri":"pkg:github/aquasecurity/trivy","version":"0.58.0","result":{"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"CRITICAL"}]}]}},"metadata":{"scanFinishedOn":"2026-12-01T00:00:00Z"}}`),
		`{"Payload":{"body":"not base64"}}`)
	f.Add([]byte(`{"bomFormat":"CycloneDX","metadata":{"timestamp":"2026-12-01T00:00:00Z","tools":[{"name":"grype"}]},"vulnerabilities":[]}`), `null`)
	f.Fuzz(func(t *testing.T, predicate []byte, rekor string) {
		for _, parse := range scanPredicates {
			rep, err := parse(predicate)
			if err != nil {
				continue
			}
			if len(rep.Vulnerabilities) > maxVulnerabilities {
				t.Fatalf("%d findings kept, more than %d", len(rep.Vulnerabilities), maxVulnerabilities)
			}
			for i := 1; i < len(rep.Vulnerabilities); i++ {
				if rules.SeverityRank(rep.Vulnerabilities[i].Severity) > rules.SeverityRank(rep.Vulnerabilities[i-1].Severity) {
					t.Fatalf("findings not most severe first: %+v", rep.Vulnerabilities)
				}
			}
			if _, err := json.Marshal(rep); err != nil {
				t.Fatal(err)
			}
		}
		cert := "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"
		_, _ = legacyBundle(legacySignature{payload: predicate, sig: []byte(rekor), cert: cert, rekor: rekor, timestamp: rekor})
		_ = legacyLoggedAt(rekor)
	})
}
