package rules

// imageTag: images are pinned: a tag other than latest, or better a digest
// (@sha256:...). Fields: spec.*containers[*].image and
// spec.volumes[*].image.reference (image volumes, GA in 1.36: an image the
// pod pulls like a container's). An untagged image means :latest, which
// changes under a running workload. Default action warn. No fix. An image
// volume belongs to the pod, not to a container: exemptions by image or
// container name do not reach it (exempt the namespace or the workload).

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"*containers.image", "volumes.image"},
		ID:    "imageTag", Order: 210, Action: v1alpha1.ActionWarn,
		Checklist: ItemImages,
		Doc:       `Images are pinned to a tag other than latest, or to a digest: containers' and image volumes'.`,
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
			unpinned := func(image string) string {
				tag, digest := imageTagOf(image)
				switch {
				case digest || (tag != "" && tag != "latest"):
					return ""
				case tag == "latest":
					return "uses the :latest tag"
				}
				return "has no tag, which means :latest"
			}
			for _, img := range t.Images() {
				if what := unpinned(img.Reference); what != "" {
					runs := "workload"
					if img.Volume != nil {
						runs = "pod"
					}
					out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: img.Path.String(),
						Message: fmt.Sprintf("%s image %q %s and can change under a running %s", img.Of(), img.Reference, what, runs),
						Fix:     fmt.Sprintf("set %s to a fixed tag or a digest (image@sha256:...)", img.Path)})
				}
			}
			return out
		},
	}
}

func nativeImageTag(*v1alpha1.Policy, NativeMode) Native {
	pinned := func(ref string) string {
		name := fmt.Sprintf("%[1]s.substring(%[1]s.lastIndexOf('/') + 1)", ref)
		tag := fmt.Sprintf("%[1]s.substring(%[1]s.lastIndexOf(':') + 1)", name)
		return fmt.Sprintf("(%[1]s.contains('@') || (%[2]s.lastIndexOf(':') >= 0 && %[3]s != '' && %[3]s != 'latest'))", ref, name, tag)
	}
	return Native{
		Pod: fmt.Sprintf("variables.spec.?volumes.orValue([]).all(v, !has(v.image) || %s)", pinned("v.image.?reference.orValue('')")),
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("an image volume uses the :latest tag or no tag, which can change under a running pod; fix: set "),
			specField("volumes[*].image.reference"), celString(" to a fixed tag or a digest (image@sha256:...)")),
		Container: pinned("c.?image.orValue('')"),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("use the :latest tag or no tag, which can change under a running workload; fix: set "),
			specField("containers[*].image"), celString(" to a fixed tag or a digest (image@sha256:...)")),
	}
}
