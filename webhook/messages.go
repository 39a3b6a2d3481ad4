package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/safetext"
)

// What kubectl prints is the interface most people meet podguard through,
// so every line is written for it:
//
//   - A denial is a Status of reason Invalid with one cause per violation.
//     For one object kubectl prints `The Pod "x" is invalid:` and then each
//     cause as "* <field>: <message>"; for several objects (or in events)
//     it prints the Status message, which therefore holds one violation per
//     line too. The field comes first, the rule last ("(podguard rule X)"),
//     never where kubectl shows a bad value, and the fix says "it" for the
//     field rather than printing its path again.
//   - Warnings are printed one per line as "Warning: <text>". What mutation
//     will inject into a workload's pods is one line; every finding nothing
//     injects has its own line, up to maxWarnings.
//   - Whatever is shortened ends at a word boundary with "…" and says where
//     the full list is.

// causeText is a violation as a cause's message: what, the fix, the rule.
// Messages quote values from the object (images, capability names): they
// reach kubectl's terminal through safetext.Line, one line of printable text.
func causeText(v policies.Finding) string {
	return truncate(safetext.Line(v.Message), maxFindingText) + "; fix: " + truncate(safetext.Line(v.FixHere()), maxFindingText) + " (podguard rule " + v.Rule + ")"
}

// invalid builds the denial: a Status of reason Invalid, as
// apierrors.NewInvalid would, with one cause per violation (type
// FieldValueInvalid, the field, the message), written directly: on the
// admission path the generic error aggregation cost more than the policy.
// At most maxCauses violations are listed; a cause then counts the rest
// (omitted counts those the engine did not even keep).
//
// The warnings of a denied object (ws, and omittedWarnings more) follow
// the violations as causes of their own, "warning: ..." (at most
// maxWarnings, then a count), instead of Warning headers: kubectl prints
// headers as they arrive, before the error, so five warnings used to bury
// the reason the object was refused. What mutation would inject is left
// out: nothing is injected into a refused object.
//
// A policy's helpURL ends the denial, in the message and as a last cause.
func invalid(gk schema.GroupKind, name string, vs []policies.Finding, omitted int, ws []policies.Finding, omittedWarnings int, helpURL string) *metav1.Status {
	more := omitted
	if len(vs) > maxCauses {
		more += len(vs) - maxCauses
		vs = vs[:maxCauses]
	}
	total := len(vs) + more
	causes := make([]metav1.StatusCause, 0, len(vs)+1)
	var msg strings.Builder
	msg.Grow(64 + 200*len(vs))
	fmt.Fprintf(&msg, "%s %q is invalid: %d %s of the podguard policy:", gk.Kind, name, total, safetext.Plural(total, "violation", "violations"))
	// Each cause is listed in the message too: kubectl prints only the
	// message when it applies several objects.
	add := func(typ metav1.CauseType, fieldPath, text string) {
		causes = append(causes, metav1.StatusCause{Type: typ, Message: text, Field: fieldPath})
		msg.WriteString("\n- ")
		msg.WriteString(fieldPath)
		msg.WriteString(": ")
		msg.WriteString(text)
	}
	violation := metav1.CauseType(field.ErrorTypeInvalid)
	for _, v := range vs {
		add(violation, safetext.Line(v.Field), causeText(v))
	}
	if more > 0 {
		add(violation, "<more>", fmt.Sprintf("%d more %s; run podguard validate on the manifest for the full list (podguard)", more, safetext.Plural(more, "violation", "violations")))
	}
	moreWarnings := omittedWarnings
	if len(ws) > maxWarnings {
		moreWarnings += len(ws) - maxWarnings
		ws = ws[:maxWarnings]
	}
	for _, w := range ws {
		add(CauseWarning, safetext.Line(w.Field), "warning: "+causeText(w))
	}
	if moreWarnings > 0 {
		add(CauseWarning, "<more>", fmt.Sprintf("warning: %d more %s; run podguard validate on the manifest for the full list (podguard)", moreWarnings, safetext.Plural(moreWarnings, "warning", "warnings")))
	}
	if helpURL != "" {
		help := "how to fix this, or ask for an exception: " + helpURL + " (podguard)"
		causes = append(causes, metav1.StatusCause{Type: CauseHelp, Field: "<help>", Message: help})
		msg.WriteString("\n")
		msg.WriteString(help)
	}
	return &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
		Details: &metav1.StatusDetails{Group: gk.Group, Kind: gk.Kind, Name: name, Causes: causes},
		Message: msg.String(),
	}
}

// CauseWarning is the type of a denial's causes that are warnings, not
// violations (kubectl prints every cause alike; programs can tell them
// apart). The Status message lists them after the violations and counts
// the violations only.
const CauseWarning metav1.CauseType = "PodguardWarning"

// CauseHelp is the type of the cause that carries the policy's helpURL.
const CauseHelp metav1.CauseType = "PodguardHelp"

// warnings renders the warnings of an admitted object: one line for everything
// mutation will inject into a workload's pods (from the findings marked
// Injected and the changes that fix them), then one line per other finding,
// at most maxWarnings, then one line counting the rest.
//
// A shortened line says where the full text is: the policy's helpURL, or
// podguard validate without one.
func warnings(fs []policies.Finding, changes []change.Change, omitted int, helpURL string) []string {
	if len(fs) == 0 {
		return nil
	}
	var out []string
	var injected []string
	var rest []policies.Finding
	for _, f := range fs {
		if !f.Injected {
			rest = append(rest, f)
		} else if !slices.Contains(injected, f.Rule) {
			injected = append(injected, f.Rule)
		}
	}
	if len(injected) > 0 {
		out = append(out, injectedWarning(injected, changes))
	}
	if len(rest) > maxWarnings {
		omitted += len(rest) - maxWarnings
		rest = rest[:maxWarnings]
	}
	fullText := "; full text: podguard validate"
	if helpURL != "" {
		fullText = "; full text: podguard validate, help: " + helpURL
	}
	for _, f := range rest {
		out = append(out, shorten(safetext.Line("podguard: "+f.Field+": "+f.Message+"; fix: "+f.FixHere()), fullText, " (podguard rule "+f.Rule+")"))
	}
	if omitted > 0 {
		out = append(out, fmt.Sprintf("podguard: %d more %s; run podguard validate on the manifest for the full list", omitted, safetext.Plural(omitted, "warning", "warnings")))
	}
	return out
}

// injectedWarning is the one line for what the pods of a workload will
// receive: "runAsUser=1000, capabilities.drop+=ALL, limits.cpu=500m, ...",
// in the order of the rules. It may be longer than the other warnings (up to
// maxInjectedWarningLength): the API server cuts a warning only once all of
// a response's warnings pass 4096 characters, which the bounds keep them under.
func injectedWarning(rules []string, changes []change.Change) string {
	var items []string
	for _, rule := range rules {
		for _, c := range changes {
			if c.Rule != rule {
				continue
			}
			if it := shortChange(c); it != "" && !slices.Contains(items, it) {
				items = append(items, it)
			}
		}
	}
	if len(items) == 0 {
		// A fix that Admit found but that changes nothing here (it never
		// should): name the rules rather than say nothing.
		items = rules
	}
	text := "podguard: not in the pod template, its pods receive at admission: " + strings.Join(items, ", ")
	const suffix = "; set them in the template to silence this"
	if len(text)+len(suffix) <= maxInjectedWarningLength {
		return text + suffix
	}
	const more = "; full list: podguard validate --mutate"
	return truncate(text, maxInjectedWarningLength-len(more)) + more
}

// shortChange names a change by the last two field names of its path,
// without indexes, "securityContext" and the pod spec's own path: "runAsUser=1000",
// "capabilities.drop+=ALL", "limits.cpu=500m", "seccompProfile.type=RuntimeDefault",
// "volumes+=tmp". Removals (of what the API server itself added) are "".
func shortChange(c change.Change) string {
	if c.Op == change.Remove {
		return ""
	}
	var names []string
	for _, seg := range c.Path {
		switch seg.Field {
		case "", "securityContext", "spec", "template", "jobTemplate", "containers", "initContainers", "ephemeralContainers":
		default:
			names = append(names, seg.Field)
		}
	}
	op := "="
	if c.Op == change.Append {
		op = "+="
	}
	raw, err := json.Marshal(c.Value)
	if err != nil {
		return ""
	}
	val := strings.Trim(string(raw), `"`)
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		switch {
		case obj["name"] != nil:
			val = fmt.Sprint(obj["name"])
		case len(obj) == 1:
			for k, v := range obj {
				names, val = append(names, k), fmt.Sprint(v)
			}
		}
	}
	if len(names) > 2 {
		names = names[len(names)-2:]
	}
	return strings.Join(names, ".") + op + val
}

// shorten fits text+suffix in maxWarningLength, shortening text at a word
// boundary with "…" followed by more, which says where the full text is.
func shorten(text, more, suffix string) string {
	if len(text)+len(suffix) <= maxWarningLength {
		return text + suffix
	}
	return truncate(text, maxWarningLength-len(suffix)-len(more)) + more + suffix
}

// truncate shortens s to at most max bytes, ending it with "…" at a word
// boundary; only a single word longer than max is cut inside, and never
// inside a UTF-8 character.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if sp := strings.LastIndexByte(s[:cut+1], ' '); sp > 0 {
		cut = sp
	}
	return strings.TrimRight(s[:cut], " ,;") + ellipsis
}
