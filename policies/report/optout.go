package report

import (
	"fmt"
	"slices"
)

// OptOut says which namespaces podguard's webhooks never see: those named
// (the chart's webhook.excludeNamespaces and its own namespace) and those
// labelled Label=true (webhook.optOutLabel). The audit leaves them out as
// the admission path does: it shows them, and never counts or baselines
// what runs there.
type OptOut struct {
	// Label is the opt-out label ("" for none); a namespace opts out
	// with the value "true", as the webhook configurations' selector reads it.
	Label string
	// Exclude are namespace names the webhooks never see.
	Exclude []string
}

// Reason is why a namespace with these labels is opted out, or "".
func (o OptOut) Reason(namespace string, nsLabels map[string]string) string {
	if slices.Contains(o.Exclude, namespace) {
		return "excluded from podguard's webhooks"
	}
	if o.Label != "" && nsLabels[o.Label] == "true" {
		return fmt.Sprintf("labelled %s=true: podguard's webhooks never see it", o.Label)
	}
	return ""
}

// OptedOut is a namespace the audit leaves out, with what it holds.
type OptedOut struct {
	Namespace string `json:"namespace"`
	Reason    string `json:"reason"`
	// Objects counts the judged kinds' objects found there, not judged.
	Objects int `json:"objects"`
}

// optedOut takes the objects of opted-out namespaces out of the input,
// counting them per namespace.
func optedOut(in *Input) []OptedOut {
	out := []OptedOut{}
	if len(in.OptedOut) == 0 {
		return out
	}
	counts := map[string]int{}
	keep := in.Objects[:0:0]
	for _, o := range in.Objects {
		t, ok := judged(o)
		if ok {
			if _, skip := in.OptedOut[t.ObjectMeta.Namespace]; skip {
				counts[t.ObjectMeta.Namespace]++
				continue
			}
		}
		keep = append(keep, o)
	}
	in.Objects = keep
	skipped := in.Skipped[:0:0]
	for _, s := range in.Skipped {
		if _, skip := in.OptedOut[s.Namespace]; skip && s.Namespace != "" {
			counts[s.Namespace]++
			continue
		}
		skipped = append(skipped, s)
	}
	in.Skipped = skipped
	nps := in.NetworkPolicies[:0:0]
	for _, np := range in.NetworkPolicies {
		if _, skip := in.OptedOut[np.Namespace]; !skip {
			nps = append(nps, np)
		}
	}
	in.NetworkPolicies = nps
	for _, ns := range slices.Sorted(func(yield func(string) bool) {
		for ns := range in.OptedOut {
			if !yield(ns) {
				return
			}
		}
	}) {
		// Only where something runs: the CLI knows no other namespaces.
		if counts[ns] > 0 {
			out = append(out, OptedOut{Namespace: ns, Reason: in.OptedOut[ns], Objects: counts[ns]})
		}
	}
	return out
}
