package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"podguard.dev/podguard/policies/rules"
)

// ObjectKind is a report kind the background audit can write.
type ObjectKind struct {
	APIVersion, Kind, Resource string
}

// The report kinds, in order of preference.
var (
	// OpenReports is openreports.io/v1alpha1 Report, the successor of the
	// Policy working group's PolicyReport (Kyverno and Policy Reporter read it).
	OpenReports = ObjectKind{APIVersion: "openreports.io/v1alpha1", Kind: "Report", Resource: "reports"}
	// PolicyReport is wgpolicyk8s.io/v1alpha2 PolicyReport.
	PolicyReport = ObjectKind{APIVersion: "wgpolicyk8s.io/v1alpha2", Kind: "PolicyReport", Resource: "policyreports"}
)

// MaxObjectBytes caps a report object's JSON: etcd refuses requests above
// 1.5 MiB, and one report per namespace must never come near that.
const MaxObjectBytes = 1 << 20

// ObjectName is the name of podguard's report in each namespace.
const ObjectName = "podguard"

// HashAnnotation holds the hash of a report's content (without
// timestamps), so an unchanged report is not written again.
const HashAnnotation = "podguard.dev/content-hash"

// severity of a finding by the action of its rule.
func severity(action string) string {
	switch action {
	case "enforce":
		return "high"
	case "warn":
		return "medium"
	}
	return "low"
}

// Object builds the report object of a namespace: one result per finding
// that denies or warns (subject, rule, field, message, fix, controls), and
// counts. Results beyond MaxObjectBytes are left out and counted in a last
// result; the summary always counts everything. It returns the object and
// the hash of its content, timestamps excluded.
func (ns *Namespace) Object(k ObjectKind, now time.Time) (map[string]any, string) {
	var fail, warn, pass, skip int
	for _, s := range ns.Subjects {
		switch s.Result {
		case Pass:
			pass++
		case Skip:
			skip++
		}
		skip += len(s.Exempted)
		fail += len(s.Violations)
		warn += len(s.Warnings)
	}
	obj := map[string]any{
		"apiVersion": k.APIVersion, "kind": k.Kind,
		"metadata": map[string]any{"name": ObjectName, "namespace": ns.Name,
			"labels": map[string]any{"app.kubernetes.io/managed-by": "podguard"}},
		"summary": map[string]any{"pass": pass, "fail": fail, "warn": warn, "skip": skip, "error": 0},
	}
	if k == OpenReports {
		obj["source"] = "podguard"
	}
	// Room for everything but the results, and for the "omitted" result.
	// Results are built one at a time, failures first, and only while they
	// fit: a namespace of thousands of Pods has tens of thousands of
	// findings, and building them all to keep a thousand held most of the
	// audit's memory under churn.
	base, _ := json.Marshal(obj)
	budget := MaxObjectBytes - len(base) - 2048
	results := make([]any, 0, min(fail+warn, 1024))
	omitted := 0
	// add builds a result and keeps it if it fits; below minResultBytes
	// left, none is built just to be left out.
	add := func(build func() map[string]any) {
		if budget < minResultBytes {
			omitted++
			return
		}
		r := build()
		b, _ := json.Marshal(r)
		if budget-len(b)-64 < 0 {
			omitted++
			return
		}
		budget -= len(b) + 64 // the timestamp added below, and a comma
		results = append(results, r)
	}
	for _, failures := range []bool{true, false} {
		for _, s := range ns.Subjects {
			list, result := s.Warnings, "warn"
			if failures {
				list, result = s.Violations, "fail"
			}
			for _, f := range list {
				add(func() map[string]any { return s.result(f, result) })
			}
		}
	}
	// Exemptions last: what was not judged matters less than what was
	// found, but an auditor reading the report in the cluster must see
	// what was lifted, by which exemption or PodGuardException, until when.
	for _, s := range ns.Subjects {
		for _, x := range s.Exempted {
			add(func() map[string]any { return s.exemptedResult(x) })
		}
	}
	if omitted > 0 {
		results = append(results, map[string]any{"source": "podguard", "policy": "podguard", "rule": "omitted", "result": "skip", "scored": false,
			"message": fmt.Sprintf("%d more findings are left out to keep this report under %d bytes; run podguard audit -n %s for all", omitted, MaxObjectBytes, ns.Name)})
	}
	obj["results"] = results
	content, _ := json.Marshal(obj)
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:12])
	ts := map[string]any{"seconds": now.Unix(), "nanos": 0}
	for _, r := range results {
		r.(map[string]any)["timestamp"] = ts
	}
	obj["metadata"].(map[string]any)["annotations"] = map[string]any{HashAnnotation: hash}
	return obj, hash
}

// minResultBytes is less than any result takes (a reference to its
// subject, the rule, message, field and fix): with less budget left, no
// result is built just to be left out.
const minResultBytes = 256

// resource is the subject as a report result's resource reference.
func (s *Subject) resource() map[string]any {
	ref := map[string]any{"apiVersion": s.APIVersion, "kind": s.Kind, "namespace": s.Namespace, "name": s.Name}
	if s.uid != "" {
		ref["uid"] = string(s.uid)
	}
	return ref
}

// exemptedResult is an exemption that applied to a subject as a "skip"
// result, as Kyverno reports a rule a PolicyException lifted: the rule
// ("*" for every rule), the exemption's reason as the message, and where
// it comes from (the policy, or a PodGuardException by namespace/name)
// with its expiry.
func (s *Subject) exemptedResult(x Exempted) map[string]any {
	props := map[string]any{"exemption": "policy"}
	if x.Exception != "" {
		props["exemption"], props["exception"] = "PodGuardException", x.Exception
	}
	if x.Expires != "" {
		props["expires"] = x.Expires
	}
	return map[string]any{
		"source": "podguard", "policy": "podguard", "rule": x.Rule, "result": "skip", "scored": false,
		"message": x.Reason, "resources": []any{s.resource()}, "properties": props,
	}
}

// result is one finding of a subject as a report result.
func (s *Subject) result(f Finding, result string) map[string]any {
	ref := s.resource()
	props := map[string]any{"field": f.Field, "fix": f.Fix, "action": f.Action}
	if len(f.PSS) > 0 {
		props["pss"] = strings.Join(f.PSS, ", ")
	}
	if len(f.CIS) > 0 {
		props["cis"] = strings.Join(f.CIS, ", ")
	}
	if s.Pods != nil {
		props["pods"] = fmt.Sprint(s.Pods.Total)
	}
	if is, ok := s.imageAt[f.Field]; ok && is.Rule == f.Rule {
		// An image rule's finding: the image and the digest judged.
		props["image"], props["digest"] = is.Image, is.Digest
	}
	category := ""
	if d, ok := rules.Lookup(f.Rule); ok {
		category = d.Checklist.Title
	}
	return map[string]any{
		"source": "podguard", "policy": "podguard", "rule": f.Rule, "result": result, "severity": severity(f.Action), "scored": true,
		"category": category, "message": f.Message, "resources": []any{ref}, "properties": props,
	}
}
