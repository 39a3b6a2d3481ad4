package report

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/podspec"
)

// ImageSubject is one image the image rules judged in a namespace, by
// digest: what a rule made of it and which subjects run it. The audit's
// view of what runs, image by image: an image whose signature no longer
// verifies, or whose scan aged past maxAge, is listed once here however
// many workloads run it.
type ImageSubject struct {
	// Image is the reference as the first subject running it wrote it.
	Image string `json:"image"`
	// Digest is the digest judged (sha256:...); empty when the reference
	// could not be resolved.
	Digest string `json:"digest"`
	// Rule is imageSignatures or imageVulnerabilities.
	Rule string `json:"rule"`
	// Result is fail or warn (a finding of the rule at this image in a
	// subject running it: the worst is kept), skip (the registry could not
	// be asked) or pass (no finding; an exemption may have lifted one, as
	// the subjects' exemptions say).
	Result string `json:"result"`
	// Detail is the finding's message, or what the registry said.
	Detail string `json:"detail,omitempty"`
	// Signers are the authorities whose signature verified.
	Signers []string `json:"signers,omitempty"`
	// VerifiedAt is when the digest was last verified.
	VerifiedAt *time.Time `json:"verifiedAt,omitempty"`
	// Subjects are the subjects running it (Kind/name).
	Subjects []string `json:"subjects"`
	// field is where the first subject names it.
	field string
}

// imageRules are the rules whose verdicts are listed by image, with where
// the engine's attributes hold them.
var imageRules = []struct {
	id       string
	verdicts func(*policies.Attributes) imagetrust.Verdicts
}{
	{"imageSignatures", func(a *policies.Attributes) imagetrust.Verdicts { return a.ImageVerdicts }},
	{"imageVulnerabilities", func(a *policies.Attributes) imagetrust.Verdicts { return a.ImageScans }},
}

// addImages records what the image rules made of t's images, judged with
// attrs into res, for subject s.
func (s *Subject) addImages(t *podspec.Target, attrs *policies.Attributes, res *policies.Result) {
	if attrs.ImageVerdicts == nil && attrs.ImageScans == nil {
		return
	}
	finding := func(fs []policies.Finding, rule, field string) (string, bool) {
		for _, f := range fs {
			if f.Rule == rule && f.Field == field {
				return f.Message, true
			}
		}
		return "", false
	}
	for _, img := range t.Images() {
		field := img.Path.String()
		for _, r := range imageRules {
			for k, v := range r.verdicts(attrs) {
				if k.Ref != img.Reference {
					continue
				}
				is := ImageSubject{Image: img.Reference, Digest: v.Digest, Rule: r.id, Result: Pass, Detail: v.Detail, Signers: v.Signers}
				if !v.VerifiedAt.IsZero() {
					at := v.VerifiedAt.UTC()
					is.VerifiedAt = &at
				}
				if msg, ok := finding(res.Violations, r.id, field); ok {
					is.Result, is.Detail = Fail, msg
				} else if msg, ok := finding(res.Warnings, r.id, field); ok {
					is.Result, is.Detail = Warn, msg
				} else if v.Status == imagetrust.Unreachable {
					is.Result = Skip
				}
				is.Subjects, is.field = []string{s.Kind + "/" + s.Name}, field
				s.images = append(s.images, is)
			}
		}
	}
}

// imageRank orders results from the worst.
func imageRank(result string) int {
	switch result {
	case Fail:
		return 0
	case Warn:
		return 1
	case Skip:
		return 2
	}
	return 3
}

// namespaceImages merges the images of a namespace's subjects: one entry
// per image, digest and rule, with the worst result and every subject
// running it; the worst first.
func namespaceImages(subjects []*Subject) []ImageSubject {
	type key struct{ image, digest, rule string }
	byKey := map[key]*ImageSubject{}
	var order []key
	for _, s := range subjects {
		for _, is := range s.images {
			k := key{is.Image, is.Digest, is.Rule}
			if is.Digest != "" {
				k.image = repository(is.Image)
			}
			cur := byKey[k]
			if cur == nil {
				c := is
				c.Subjects = slices.Clone(is.Subjects)
				byKey[k], order = &c, append(order, k)
				continue
			}
			if imageRank(is.Result) < imageRank(cur.Result) {
				subs := cur.Subjects
				*cur = is
				cur.Subjects = subs
			}
			for _, sub := range is.Subjects {
				if !slices.Contains(cur.Subjects, sub) {
					cur.Subjects = append(cur.Subjects, sub)
				}
			}
		}
	}
	out := make([]ImageSubject, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	slices.SortStableFunc(out, func(a, b ImageSubject) int {
		return cmp.Or(cmp.Compare(imageRank(a.Result), imageRank(b.Result)), cmp.Compare(a.Image, b.Image), cmp.Compare(a.Rule, b.Rule))
	})
	return out
}

// repository is a reference without its tag or digest.
func repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}
