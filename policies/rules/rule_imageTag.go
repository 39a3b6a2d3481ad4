package rules

// imageTag: images are pinned: a tag other than latest, or better a digest
// (@sha256:...). Field: spec.*containers[*].image. An untagged image means
// :latest, which changes under a running workload. Default action warn. No fix.

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"*containers.image"},
		ID:    "imageTag", Order: 210, Action: v1alpha1.ActionWarn,
		Checklist: ItemImages,
		Doc:       `Images are pinned to a tag other than latest, or to a digest.`,
		New:       newImageTag,
		Native:    nativeImageTag,
	})
}

// imageTagOf returns the tag of an image reference ("" when untagged) and
// whether it is pinned by digest.
func imageTagOf(image string) (tag string, digest bool) {
	if strings.Contains(image, "@") {
		return "", true
	}
	name := image
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:], false
	}
	return "", false
}

func newImageTag(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "imageTag",
		Summary: "images are pinned to a tag other than latest or to a digest",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, c := range t.Containers {
				tag, digest := imageTagOf(c.Image)
				if digest || (tag != "" && tag != "latest") {
					continue
				}
				p := c.Path().Child("image")
				what := "has no tag, which means :latest"
				if tag == "latest" {
					what = "uses the :latest tag"
				}
				out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(),
					Message: fmt.Sprintf("container %q image %q %s and can change under a running workload", c.Name, c.Image, what),
					Fix:     fmt.Sprintf("set %s to a fixed tag or a digest (image@sha256:...)", p)})
			}
			return out
		},
	}
}

func nativeImageTag(*v1alpha1.Policy, NativeMode) Native {
	name := "c.?image.orValue('').substring(c.?image.orValue('').lastIndexOf('/') + 1)"
	tag := fmt.Sprintf("%s.substring(%s.lastIndexOf(':') + 1)", name, name)
	return Native{
		Container: fmt.Sprintf("c.?image.orValue('').contains('@') || (%s.lastIndexOf(':') >= 0 && %s != '' && %s != 'latest')", name, tag, tag),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("use the :latest tag or no tag, which can change under a running workload; fix: set "),
			specField("containers[*].image"), celString(" to a fixed tag or a digest (image@sha256:...)")),
	}
}
