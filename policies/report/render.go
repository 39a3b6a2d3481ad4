package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"podguard.dev/podguard/policies/yamlenc"
	"slices"
	"sort"
	"strings"

	"podguard.dev/podguard/policies/safetext"
)

// JSON writes the report as indented JSON: the documented contract.
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// YAML writes the same document as YAML.
func (r *Report) YAML(w io.Writer) error {
	b, err := yamlenc.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func mark(ok bool) string {
	if ok {
		return "✅"
	}
	return "❌"
}

// Text writes the report for a terminal: per namespace the checklist, the
// subjects behind each ❌, the exemptions, what would be denied; then the
// cluster's totals.
func (r *Report) Text(w io.Writer) error {
	// Names, images, reasons and messages come from the cluster and the
	// policy: one line each, their control characters made visible, so an
	// object cannot forge lines or escape sequences in a terminal or CI log.
	safe := safetext.Sanitized(*r)
	r = &safe
	var b strings.Builder
	where := r.Cluster
	if where == "" {
		where = "the cluster"
	}
	fmt.Fprintf(&b, "podguard audit of %s at %s (policy mode %s; controls: Pod Security Standards, %s)\n",
		where, r.Generated.Format("2006-01-02T15:04:05Z"), r.PolicyMode, r.CISBenchmark)
	for _, ns := range r.Namespaces {
		s := ns.Summary
		fmt.Fprintf(&b, "\nnamespace %s: %d %s (%d denied, %d warned, %d pass", ns.Name, s.Subjects, safetext.Plural(s.Subjects, "subject", "subjects"), s.Fail, s.Warn, s.Pass)
		if s.Skip > 0 {
			fmt.Fprintf(&b, ", %d skipped", s.Skip)
		}
		fmt.Fprintf(&b, "), %d %s\n", s.Pods, safetext.Plural(s.Pods, "pod", "pods"))
		for _, it := range ns.Checklist {
			fmt.Fprintf(&b, "  %s %s", mark(it.OK), it.Title)
			if !it.OK {
				fmt.Fprintf(&b, ": %s", listSome(it.Subjects, 8))
			}
			b.WriteString("\n")
		}
		for _, x := range ns.Exemptions {
			exp := ""
			if x.Expires != "" {
				exp = ", expires " + x.Expires
			}
			fmt.Fprintf(&b, "  exempted: %s: %s%s\n", x.Rule, x.Reason, exp)
		}
		writeImages(&b, ns.Images)
		for _, sub := range ns.Subjects {
			if sub.Result == Skip {
				fmt.Fprintf(&b, "  skipped: %s/%s: %s\n", sub.Kind, sub.Name, sub.Reason)
				continue
			}
			outOfPolicy := sub.Pods != nil && sub.Pods.OutOfPolicy > 0
			if sub.Result != Fail && sub.Result != Warn && !outOfPolicy {
				continue
			}
			what := "denied"
			switch sub.Result {
			case Warn:
				what = "warned"
			case Pass:
				what = "admitted, but running"
			}
			pods := ""
			if sub.Pods != nil {
				pods = fmt.Sprintf(" (%d %s", sub.Pods.Total, safetext.Plural(sub.Pods.Total, "pod", "pods"))
				if sub.Pods.OutOfPolicy > 0 {
					pods += fmt.Sprintf(", %d out of policy as they run: %s", sub.Pods.OutOfPolicy, strings.Join(sub.Pods.Rules, ", "))
				}
				pods += ")"
			}
			fmt.Fprintf(&b, "  %s: %s/%s%s\n", what, sub.Kind, sub.Name, pods)
			writeFindings(&b, "", sub.Violations)
			// What podguard injects into the pods at admission needs no
			// person: one line names it, apart from the warnings that do.
			var injected []string
			var warnings []Finding
			for _, f := range sub.Warnings {
				if f.FixedAtAdmission {
					if !slices.Contains(injected, f.Rule) {
						injected = append(injected, f.Rule)
					}
					continue
				}
				warnings = append(warnings, f)
			}
			writeFindings(&b, "warning: ", warnings)
			writeFindings(&b, "audit: ", sub.Audits)
			if len(injected) > 0 {
				fmt.Fprintf(&b, "    fixed at admission (podguard injects it into the pods): %s\n", strings.Join(injected, ", "))
			}
		}
	}
	var unplaced []Subject
	for _, s := range r.Skipped {
		if s.Namespace == "" {
			unplaced = append(unplaced, s)
		}
	}
	if len(unplaced) > 0 {
		b.WriteString("\nskipped:\n")
		for _, s := range unplaced {
			fmt.Fprintf(&b, "  %s/%s: %s\n", s.Kind, s.Name, s.Reason)
		}
	}
	if len(r.Exceptions) > 0 {
		b.WriteString("\nPodGuardExceptions:\n")
		for _, x := range r.Exceptions {
			fmt.Fprintf(&b, "  %s/%s: %s, rules %s, expires %s, reason: %s", x.Namespace, x.Name, x.State, strings.Join(x.Rules, ", "), x.Expires, x.Reason)
			if x.Problem != "" {
				fmt.Fprintf(&b, "; ignored because: %s", x.Problem)
			}
			if len(x.Subjects) > 0 {
				fmt.Fprintf(&b, "; applied to %s", listSome(x.Subjects, 8))
			}
			b.WriteString("\n")
		}
	}
	if len(r.OptedOut) > 0 {
		b.WriteString("\nnot audited (podguard's webhooks never see these namespaces):\n")
		for _, o := range r.OptedOut {
			fmt.Fprintf(&b, "  %s: %s; %d %s not judged\n", o.Namespace, o.Reason, o.Objects, safetext.Plural(o.Objects, "object", "objects"))
		}
	}
	s := r.Summary
	fmt.Fprintf(&b, "\ncluster: %d %s in %d %s: %d denied, %d warned, %d pass, %d skipped; %d %s\n", s.Subjects, safetext.Plural(s.Subjects, "subject", "subjects"),
		len(r.Namespaces), safetext.Plural(len(r.Namespaces), "namespace", "namespaces"), s.Fail, s.Warn, s.Pass, s.Skip, s.Pods, safetext.Plural(s.Pods, "pod", "pods"))
	for _, it := range r.Checklist {
		fmt.Fprintf(&b, "  %s %s", mark(it.OK), it.Title)
		if !it.OK {
			fmt.Fprintf(&b, " (%d %s)", len(it.Subjects), safetext.Plural(len(it.Subjects), "subject", "subjects"))
		}
		controls := "beyond PSS and CIS"
		if len(it.Controls) > 0 {
			controls = strings.Join(it.Controls, ", ")
		}
		fmt.Fprintf(&b, "\n      %s\n", controls)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeImages writes what the image rules made of a namespace's images:
// each one that fails, warns or could not be checked, with the subjects
// running it, and how many pass.
func writeImages(b *strings.Builder, images []ImageSubject) {
	pass := 0
	for _, is := range images {
		if is.Result == Pass {
			pass++
			continue
		}
		what := map[string]string{Fail: "denied", Warn: "warned", Skip: "not checked"}[is.Result]
		ref := is.Image
		if is.Digest != "" && !strings.Contains(ref, "@") {
			ref += "@" + is.Digest
		}
		fmt.Fprintf(b, "  image %s by %s: %s: %s (run by %s)\n", what, is.Rule, ref, is.Detail, listSome(is.Subjects, 8))
	}
	if pass > 0 {
		fmt.Fprintf(b, "  images passing the image rules: %d\n", pass)
	}
}

// writeFindings writes a subject's findings grouped by rule: the first of
// each rule with its message and fix, the others of that rule by their
// field only ("also at"), so a workload of five containers missing one
// setting is two lines, not five.
func writeFindings(b *strings.Builder, label string, fs []Finding) {
	var order []string
	byRule := map[string][]Finding{}
	for _, f := range fs {
		if _, ok := byRule[f.Rule]; !ok {
			order = append(order, f.Rule)
		}
		byRule[f.Rule] = append(byRule[f.Rule], f)
	}
	for _, rule := range order {
		first := byRule[rule][0]
		fmt.Fprintf(b, "    %s: %s: %s%s (fix: %s)\n", rule, first.Field, label, first.Message, first.FixHere())
		if rest := byRule[rule][1:]; len(rest) > 0 {
			fields := make([]string, len(rest))
			for i, f := range rest {
				fields[i] = f.Field
			}
			fmt.Fprintf(b, "      also at: %s\n", listSome(fields, 6))
		}
	}
}

// findingControls names a finding's controls for people.
func findingControls(f Finding) string {
	var parts []string
	for _, p := range f.PSS {
		parts = append(parts, "PSS "+p)
	}
	if len(f.CIS) > 0 {
		parts = append(parts, "CIS "+strings.Join(f.CIS, ", "))
	}
	if len(parts) == 0 {
		return "beyond PSS"
	}
	return strings.Join(parts, "; ")
}

// listSome joins up to n items and says how many more there are.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// RuleCount is how many findings of one rule the report holds.
type RuleCount struct {
	Rule       string
	Violations int
	Warnings   int
}

// ByRule counts findings per rule, most violations first.
func (r *Report) ByRule() []RuleCount {
	m := map[string]*RuleCount{}
	for _, ns := range r.Namespaces {
		for _, s := range ns.Subjects {
			for _, f := range s.Violations {
				if m[f.Rule] == nil {
					m[f.Rule] = &RuleCount{Rule: f.Rule}
				}
				m[f.Rule].Violations++
			}
			for _, f := range s.Warnings {
				if m[f.Rule] == nil {
					m[f.Rule] = &RuleCount{Rule: f.Rule}
				}
				m[f.Rule].Warnings++
			}
		}
	}
	out := make([]RuleCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Violations+out[i].Warnings != out[j].Violations+out[j].Warnings {
			return out[i].Violations+out[i].Warnings > out[j].Violations+out[j].Warnings
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// HTML writes one self-contained page (no external assets) for an
// auditor: a summary per namespace and checklist item, a chart of findings
// per rule, and every finding with its field, fix and controls.
func (r *Report) HTML(w io.Writer) error {
	counts := r.ByRule()
	max := 1
	for _, c := range counts {
		if c.Violations+c.Warnings > max {
			max = c.Violations + c.Warnings
		}
	}
	type bar struct {
		Rule                string
		Y, WViol, WWarn, TX int
		Violations          int
		Warnings            int
	}
	var bars []bar
	for i, c := range counts {
		bars = append(bars, bar{Rule: c.Rule, Y: 10 + i*24, WViol: c.Violations * 480 / max, WWarn: c.Warnings * 480 / max,
			TX: 190 + (c.Violations+c.Warnings)*480/max + 6, Violations: c.Violations, Warnings: c.Warnings})
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, struct {
		*Report
		Bars        []bar
		ChartHeight int
	}{r, bars, 20 + 24*len(bars)})
	if err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

var page = template.Must(template.New("audit").Funcs(template.FuncMap{"join": strings.Join, "controls": findingControls}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>podguard audit{{with .Cluster}} of {{.}}{{end}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; font-size: 0.9em; }
th { background: #f4f4f4; }
.fail { color: #b00020; font-weight: bold; } .warn { color: #a05a00; } .pass { color: #2e7d32; }
code { font-size: 0.85em; }
/* The findings fit the window: long field paths and image names wrap
   instead of pushing the fix column out of sight. */
table.findings { table-layout: fixed; width: 100%; }
table.findings td { overflow-wrap: anywhere; }
</style>
</head>
<body>
<h1 id="title">podguard audit{{with .Cluster}} of {{.}}{{end}}</h1>
<p>Generated {{.Generated.Format "2006-01-02 15:04:05 UTC"}}; policy mode {{.PolicyMode}}; controls: Pod Security Standards and {{.CISBenchmark}}.
Workloads are judged as admitted (what their next rollout gets), Pods as they run.</p>

<h2 id="summary">Summary</h2>
<table>
<tr><th>namespace</th><th>subjects</th><th>denied</th><th>warned</th><th>pass</th><th>skipped</th><th>pods</th></tr>
{{range .Namespaces}}<tr><td><a href="#ns-{{.Name}}">{{.Name}}</a></td><td>{{.Summary.Subjects}}</td><td class="fail">{{.Summary.Fail}}</td><td class="warn">{{.Summary.Warn}}</td><td class="pass">{{.Summary.Pass}}</td><td>{{.Summary.Skip}}</td><td>{{.Summary.Pods}}</td></tr>
{{end}}<tr><th>cluster</th><th>{{.Summary.Subjects}}</th><th>{{.Summary.Fail}}</th><th>{{.Summary.Warn}}</th><th>{{.Summary.Pass}}</th><th>{{.Summary.Skip}}</th><th>{{.Summary.Pods}}</th></tr>
</table>

<h2 id="checklist">Checklist</h2>
<table>
<tr><th></th><th>item</th><th>rules</th><th>controls</th><th>subjects behind a failure</th></tr>
{{range .Checklist}}<tr><td>{{if .OK}}<span class="pass">pass</span>{{else}}<span class="fail">FAIL</span>{{end}}</td><td>{{.Title}}</td><td>{{join .Rules ", "}}</td><td>{{join .Controls ", "}}</td><td>{{join .Subjects ", "}}</td></tr>
{{end}}</table>

<h2 id="chart">Findings per rule</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="760" height="{{.ChartHeight}}" role="img" aria-label="findings per rule">
{{range .Bars}}<text x="180" y="{{.Y}}" dy="14" text-anchor="end" font-size="12">{{.Rule}}</text>
<rect x="190" y="{{.Y}}" width="{{.WViol}}" height="18" fill="#b00020"><title>{{.Violations}} violations</title></rect>
<rect x="{{.WViol}}" y="{{.Y}}" width="{{.WWarn}}" height="18" fill="#e0a000" transform="translate(190,0)"><title>{{.Warnings}} warnings</title></rect>
<text x="{{.TX}}" y="{{.Y}}" dy="14" font-size="12">{{.Violations}} / {{.Warnings}}</text>
{{end}}</svg>
<p>Red: violations (denied); amber: warnings.</p>

<h2 id="findings">Findings</h2>
{{range .Namespaces}}<h3 id="ns-{{.Name}}">namespace {{.Name}}</h3>
{{if .Exemptions}}<p>Exemptions: {{range .Exemptions}}{{.Rule}} ({{.Reason}}{{with .Expires}}, expires {{.}}{{end}}); {{end}}</p>{{end}}
<table class="findings">
<colgroup><col style="width:14%"><col style="width:7%"><col style="width:9%"><col style="width:18%"><col style="width:24%"><col style="width:18%"><col style="width:10%"></colgroup>
<tr><th>subject</th><th>result</th><th>rule</th><th>field</th><th>message</th><th>fix</th><th>controls</th></tr>
{{range .Subjects}}{{$s := .}}{{range .Violations}}<tr><td>{{$s.Kind}}/{{$s.Name}}{{with $s.Pods}} ({{.Total}} {{if eq .Total 1}}pod{{else}}pods{{end}}){{end}}</td><td class="fail">denied</td><td>{{.Rule}}</td><td><code>{{.Field}}</code></td><td>{{.Message}}</td><td>{{.Fix}}</td><td>{{controls .}}</td></tr>
{{end}}{{range .Warnings}}<tr><td>{{$s.Kind}}/{{$s.Name}}</td>{{if .FixedAtAdmission}}<td class="pass">fixed at admission</td>{{else}}<td class="warn">warning</td>{{end}}<td>{{.Rule}}</td><td><code>{{.Field}}</code></td><td>{{.Message}}</td><td>{{.Fix}}</td><td>{{controls .}}</td></tr>
{{end}}{{with .Pods}}{{if .OutOfPolicy}}<tr><td>{{$s.Kind}}/{{$s.Name}}</td><td class="fail">running</td><td>{{join .Rules ", "}}</td><td></td><td>{{.OutOfPolicy}} of its {{.Total}} pods run out of policy (created before it, or under an expired exemption)</td><td>roll the workload out again</td><td></td></tr>
{{end}}{{end}}{{if eq $s.Result "skip"}}<tr><td>{{$s.Kind}}/{{$s.Name}}</td><td>skipped</td><td></td><td></td><td>{{$s.Reason}}</td><td></td><td></td></tr>
{{end}}{{end}}</table>
{{if .Images}}<table class="findings images">
<colgroup><col style="width:30%"><col style="width:8%"><col style="width:12%"><col style="width:32%"><col style="width:18%"></colgroup>
<tr><th>image</th><th>result</th><th>rule</th><th>detail</th><th>run by</th></tr>
{{range .Images}}<tr><td><code>{{.Image}}</code>{{with .Digest}}<br><code>{{.}}</code>{{end}}</td><td class="{{.Result}}">{{.Result}}</td><td>{{.Rule}}</td><td>{{.Detail}}{{with .Signers}} (signed by {{join . ", "}}){{end}}</td><td>{{join .Subjects ", "}}</td></tr>
{{end}}</table>{{end}}
{{end}}
{{if .Exceptions}}<h2 id="exceptions">PodGuardExceptions</h2>
<table><tr><th>exception</th><th>state</th><th>rules</th><th>expires</th><th>reason</th><th>applied to</th></tr>
{{range .Exceptions}}<tr><td>{{.Namespace}}/{{.Name}}</td><td>{{.State}}{{with .Problem}}: {{.}}{{end}}</td><td>{{join .Rules ", "}}</td><td>{{.Expires}}</td><td>{{.Reason}}</td><td>{{join .Subjects ", "}}</td></tr>
{{end}}</table>{{end}}
{{if .OptedOut}}<h2 id="opted-out">Not audited</h2>
<p>podguard's webhooks never see these namespaces: their objects are not judged, counted or baselined.</p>
<table><tr><th>namespace</th><th>why</th><th>objects</th></tr>
{{range .OptedOut}}<tr><td>{{.Namespace}}</td><td>{{.Reason}}</td><td>{{.Objects}}</td></tr>
{{end}}</table>{{end}}
{{if .Skipped}}<h2 id="skipped">Skipped</h2>
<table><tr><th>object</th><th>reason</th></tr>
{{range .Skipped}}<tr><td>{{.Kind}}/{{.Namespace}}/{{.Name}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{end}}
</body>
</html>
`))
