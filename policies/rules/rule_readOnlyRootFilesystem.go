package rules

// readOnlyRootFilesystem: containers mount their root filesystem read-only
// (Docker's --read-only). Field:
// spec.*containers[*].securityContext.readOnlyRootFilesystem must be true.
// Default action warn, because many images write to their root filesystem.
// Fix (off by default, mutate: true turns it on): set true and, where
// nothing is mounted at /tmp, mount an emptyDir volume named podguard-tmp
// there so programs keep a writable scratch directory. For ephemeral
// containers of a running pod, whose volumes can no longer change, /tmp is
// mounted only if the pod already has that volume.
// Windows pods cannot set the field: nothing is required or injected.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/change"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "*containers.securityContext.readOnlyRootFilesystem", "*containers.volumeMounts", "volumes"},
		ID:    "readOnlyRootFilesystem", Order: 180, Action: v1alpha1.ActionWarn,
		Checklist: ItemReadOnlyRoot,
		Doc: `Containers have a read-only root filesystem (Docker's --read-only). With
mutate: true, it is set and an emptyDir is mounted at /tmp where nothing
is mounted there.`,
		CIS:    []string{"5.7.3"},
		New:    newReadOnlyRootFilesystem,
		Native: nativeReadOnlyRootFilesystem,
	})
}

// TmpVolumeName is the emptyDir the readOnlyRootFilesystem fix mounts at /tmp.
const TmpVolumeName = "podguard-tmp"

func newReadOnlyRootFilesystem(*v1alpha1.Policy) Rule {
	s := containerField{
		field:     "readOnlyRootFilesystem",
		get:       func(sc *corev1.SecurityContext) *bool { return sc.ReadOnlyRootFilesystem },
		want:      true,
		linuxOnly: true,
	}
	return Rule{
		ID:      "readOnlyRootFilesystem",
		Summary: "containers have a read-only root filesystem",
		Check:   s.check,
		Fix: func(t *podspec.Target) []change.Change {
			need := s.unset(t)
			if len(need) == 0 {
				return nil
			}
			var out []change.Change
			hasVolume := false
			for _, v := range t.Spec.Volumes {
				if v.Name == TmpVolumeName {
					hasVolume = true
				}
			}
			for _, c := range need {
				out = append(out, change.Change{Op: change.Set, Path: c.SecurityContextPath().Child("readOnlyRootFilesystem"), Value: true})
				if mountsTmp(c) {
					continue
				}
				if !hasVolume {
					if t.ContainersOnly {
						continue
					}
					out = append(out, change.Change{Op: change.Append, Path: t.SpecPath.Child("volumes"),
						Value: corev1.Volume{Name: TmpVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}})
					hasVolume = true
				}
				out = append(out, change.Change{Op: change.Append, Path: c.Path().Child("volumeMounts"),
					Value: corev1.VolumeMount{Name: TmpVolumeName, MountPath: "/tmp"}})
			}
			return out
		},
	}
}

func mountsTmp(c podspec.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/tmp" || m.MountPath == "/tmp/" {
			return true
		}
	}
	return false
}

func nativeReadOnlyRootFilesystem(p *v1alpha1.Policy, mode NativeMode) Native {
	s := containerField{field: "readOnlyRootFilesystem", want: true, linuxOnly: true}
	opt := "c.?securityContext.?readOnlyRootFilesystem"
	n := s.native(p, "readOnlyRootFilesystem", mode, fmt.Sprintf("!%s.hasValue() || %s.value() == true", opt, opt))
	if mode == AsSubmitted && FixInForce(p, "readOnlyRootFilesystem") {
		n.MutationWebhookOnly = "the fix also mounts an emptyDir at /tmp where nothing is mounted there; it is not exported"
	}
	return n
}
