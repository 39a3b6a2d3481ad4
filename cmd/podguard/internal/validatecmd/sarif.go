package validatecmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"podguard.dev/podguard/cmd/podguard/internal/versioncmd"
	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/rules"
)

// sarifWriter collects the findings and writes one SARIF 2.1.0 log at the
// end, for code-scanning tools: every rule with its controls, one result
// per finding with its level (violation: error, warning: warning, audit:
// note), message and fix, and its file, line and column.
type sarifWriter struct {
	w   io.Writer
	run *sarif.Run
}

func newSARIFWriter(w io.Writer) *sarifWriter {
	run := sarif.NewRunWithInformationURI("podguard", "https://github.com/podguard/podguard")
	v := versioncmd.Get().Version
	run.Tool.Driver.WithSemanticVersion(strings.TrimPrefix(v, "v"))
	run.Tool.Driver.Version = &v
	for _, d := range rules.Definitions() {
		tags := []string{"security", "kubernetes"}
		for _, c := range d.PSS {
			tags = append(tags, fmt.Sprintf("PSS %s %s", c.Level, c.ID))
		}
		for _, c := range d.CIS {
			tags = append(tags, "CIS "+c)
		}
		level := map[string]string{"enforce": "error", "warn": "warning"}[string(d.Action)]
		if level == "" {
			level = "note"
		}
		doc := strings.Join(strings.Fields(d.Doc), " ")
		run.AddRule(d.ID).WithName(d.ID).WithDescription(doc).
			WithFullDescription(sarif.NewMultiformatMessageString().WithText(doc + " Controls: " + d.Controls() + ".")).
			WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(level)).
			WithProperties(sarif.NewPropertyBag().Add("tags", tags))
	}
	return &sarifWriter{w: w, run: run}
}

func (s *sarifWriter) result(r Result) error {
	fixes, tried := map[string]docFix{}, map[string]bool{}
	for _, list := range []struct {
		level string
		fs    []policies.Finding
	}{{"error", r.Violations}, {"warning", r.Warnings}, {"note", r.Audits}} {
		for _, f := range list.fs {
			if s.run.GetRuleIndex(f.Rule) < 0 {
				s.run.AddRule(f.Rule).WithName(f.Rule) // "exemptions": an expired exemption
			}
			region := sarif.NewRegion()
			if f.Line > 0 {
				// SARIF counts columns in UTF-16 code units (its default
				// columnKind); findings count characters.
				col := f.Column
				if r.utf16Column != nil {
					if c := r.utf16Column(f.Line, f.Column); c > 0 {
						col = c
					}
				}
				region.WithStartLine(f.Line).WithStartColumn(col)
			} else {
				region.WithStartLine(1)
			}
			loc := sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation(r.file)).WithRegion(region)
			what := fmt.Sprintf("%s/%s", r.Kind, r.Name)
			if r.Namespace != "" {
				what = fmt.Sprintf("%s %s/%s", r.Kind, r.Namespace, r.Name)
			}
			res := s.run.CreateResultForRule(f.Rule).WithLevel(list.level).
				WithMessage(sarif.NewTextMessage(fmt.Sprintf("%s: %s: %s (fix: %s)", what, f.Field, f.Message, f.Fix))).
				AddLocation(sarif.NewLocationWithPhysicalLocation(loc)).
				WithProperties(sarif.NewPropertyBag().Add("field", f.Field).Add("fix", f.Fix).Add("object", what).Add("source", r.Source))
			// A fix a tool can apply, where mutation knows it: the
			// object's document rewritten with this rule's changes (the
			// same edit podguard mutate makes, comments and order kept).
			if r.fix != nil {
				if fx, ok := fixes[f.Rule]; ok || !tried[f.Rule] {
					if !ok {
						tried[f.Rule] = true
						if fx, ok = r.fix(f.Rule); ok {
							fixes[f.Rule] = fx
						}
					}
					if ok {
						res.AddFixe(sarif.NewFix().WithDescription(sarif.NewTextMessage(f.Fix)).WithArtifactChanges([]*sarif.ArtifactChange{
							sarif.NewArtifactChange().WithArtifactLocation(sarif.NewSimpleArtifactLocation(r.file)).WithReplacements([]*sarif.Replacement{
								sarif.NewReplacement().WithDeletedRegion(sarif.NewRegion().WithStartLine(fx.startLine).WithStartColumn(1).WithEndLine(fx.endLine)).
									WithInsertedContent(sarif.NewArtifactContent().WithText(fx.text)),
							}),
						}))
					}
				}
			}
		}
	}
	return nil
}

func (s *sarifWriter) skip(Skipped) {}

func (s *sarifWriter) finish(Summary) error {
	report := sarif.NewReport()
	report.AddRun(s.run)
	return report.PrettyWrite(s.w)
}
