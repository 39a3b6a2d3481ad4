package rules

// imageDigest: every image a pod runs is pinned by digest
// (name[:tag]@sha256:<64 hex>, or sha512:<128 hex>): containers, init and
// ephemeral containers, and image volumes (spec.volumes[*].image.reference).
// A tag, even a fixed one, can be moved to other content after review; a
// digest names exactly the bytes that were reviewed, scanned and signed,
// which the image-signature and vulnerability rules verify. Off by default
// (turning it on warns about every tag-only image of an existing cluster);
// a platform team sets warn, then enforce.
// Fix (mutate: true, opt-in): pin each reference to the digest it resolves
// to now, keeping the reference as written (name:tag@sha256:...): the one
// fix that changes a set value, and only by appending. The digests come
// from the caller (the webhook asks the registry, within the request's
// budget); a reference the caller could not resolve is left as it is and
// reported. Natively the fix is webhook-only: CEL cannot ask a registry.
// Exemptions by image glob or container name reach containers; an image
// volume belongs to the pod (exempt the namespace or the workload).

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"*containers.image", "volumes.image"},
		ID:    "imageDigest", Order: 215, Action: v1alpha1.ActionOff, Mutate: false,
		Checklist: ItemImages,
		Doc: `Every image a pod runs (containers, init and ephemeral containers,
image volumes) is pinned by digest (@sha256:...): the bytes that were
reviewed, scanned and signed, which a moved tag cannot change. Off by
default; warn, then enforce. With mutate: true, the webhook pins each
reference to the digest the registry resolves it to at admission.`,
		New:    newImageDigest,
		Native: nativeImageDigest,
	})
}

// digestPattern is a digest suffix the kubelet pulls by: the two OCI
// registered algorithms, lowercase hex of their full length, ending the
// reference. RE2 syntax, shared by the Go check and the CEL.
const digestPattern = `@(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`

var digestRE = regexp.MustCompile(digestPattern)

func newImageDigest(*v1alpha1.Policy) Rule {
	return Rule{
		ID:      "imageDigest",
		Summary: "images are pinned by digest",
		Check: func(t *podspec.Target) []Finding {
			var out []Finding
			for _, img := range t.Images() {
				if digestRE.MatchString(img.Reference) {
					continue
				}
				fix := fmt.Sprintf("set %s to the image's digest, keeping the tag for people (name:tag@sha256:...; crane digest or docker buildx imagetools inspect prints it)", img.Path)
				if img.Volume != nil {
					fix = fmt.Sprintf("set %s to the image's digest (name:tag@sha256:...)", img.Path)
				}
				out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: img.Path.String(),
					Message: fmt.Sprintf("%s image %q is not pinned by digest: the tag can be moved to other content", img.Of(), img.Reference),
					Fix:     fix})
			}
			return out
		},
		Fix: func(t *podspec.Target) []change.Change {
			var out []change.Change
			for _, img := range t.Images() {
				// A reference with a digest (or with anything after an @)
				// is never touched; a resolved digest must be well formed.
				d, ok := t.Digests[img.Reference]
				if ok && !strings.Contains(img.Reference, "@") && digestRE.MatchString("@"+d) {
					out = append(out, change.Change{Op: change.Pin, Path: img.Path, Value: img.Reference + "@" + d})
				}
			}
			return out
		},
	}
}

func nativeImageDigest(p *v1alpha1.Policy, _ NativeMode) Native {
	pinned := func(ref string) string { return fmt.Sprintf("%s.matches(%s)", ref, celString(digestPattern)) }
	n := Native{
		Pod: fmt.Sprintf("variables.spec.?volumes.orValue([]).all(v, !has(v.image) || %s)", pinned("v.image.?reference.orValue('')")),
		PodMessage: fmt.Sprintf("%s + %s + %s", celString("an image volume is not pinned by digest; fix: set "),
			specField("volumes[*].image.reference"), celString(" to the image's digest (name:tag@sha256:...)")),
		Container: pinned("c.?image.orValue('')"),
		ContainerMessage: fmt.Sprintf("%s + %s + %s", celString("use an image not pinned by digest; fix: set "),
			specField("containers[*].image"), celString(" to the image's digest (name:tag@sha256:...)")),
	}
	if FixInForce(p, "imageDigest") {
		n.MutationWebhookOnly = "the digest a tag resolves to comes from the registry at admission, which CEL cannot ask"
	}
	return n
}
