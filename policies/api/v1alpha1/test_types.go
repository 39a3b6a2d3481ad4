package v1alpha1

// PolicyTestKind is the kind of a policy test file (podguard-test.yaml).
const PolicyTestKind = "PolicyTest"

// PolicyTest is a policy test file: resources and the verdict expected of
// each rule on each of them under a policy, as `podguard test` checks it
// (Kyverno's kyverno test and Gatekeeper's gator verify are its
// counterparts). Paths are relative to the file.
type PolicyTest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Name names the test in reports; default the file's path.
	Name string `json:"name,omitempty"`
	// Policy is the policy file; empty means the default policy.
	Policy string `json:"policy,omitempty"`
	// Exceptions are files or directories of PodGuardExceptions, honoured
	// as a cluster holding them would.
	Exceptions []string `json:"exceptions,omitempty"`
	// TargetNamespace is the namespace objects without one are applied to
	// (validate's --target-namespace).
	TargetNamespace string `json:"targetNamespace,omitempty"`
	// Now is the time exemptions expire against (RFC 3339, or a date
	// meaning 00:00 UTC), so a test of an expiring exemption stays
	// reproducible; default the current time.
	Now string `json:"now,omitempty"`
	// Resources are the manifests judged: files or directories.
	Resources []string `json:"resources"`
	// Results are the expectations.
	Results []TestResult `json:"results"`
}

// Test verdicts: what one rule came to on one object, judged as the
// cluster admits it (validate --mutate).
const (
	// VerdictPass: no finding, nothing injected.
	VerdictPass = "pass"
	// VerdictMutate: no finding, because mutation injected the rule's fix.
	VerdictMutate = "mutate"
	// VerdictWarn: a warning (for a workload, also a fix its pods get at
	// admission).
	VerdictWarn = "warn"
	// VerdictDeny: a violation; the object is denied.
	VerdictDeny = "deny"
	// VerdictAudit: an audit-action finding.
	VerdictAudit = "audit"
	// VerdictExempt: an exemption or exception lifts the rule.
	VerdictExempt = "exempt"
)

// Verdicts lists the verdicts a test result may expect.
var Verdicts = []string{VerdictPass, VerdictMutate, VerdictWarn, VerdictDeny, VerdictAudit, VerdictExempt}

// TestResult is one expectation.
type TestResult struct {
	// Resource is Kind/name or Kind/namespace/name of an object of the
	// resources; it must match exactly one.
	Resource string `json:"resource"`
	// Rule and Result: the verdict expected of one rule.
	Rule   string `json:"rule,omitempty"`
	Result string `json:"result,omitempty"`
	// Mutated is a file holding the object as podguard mutate writes it;
	// compared field by field.
	Mutated string `json:"mutated,omitempty"`
}
