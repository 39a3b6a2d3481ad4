package rules

// runAsUser: every container runs as an allowed UID (default exactly 1000,
// the seed's appuser). Fields: spec.securityContext.runAsUser and
// spec.*containers[*].securityContext.runAsUser; the container value wins.
// Unset in both places means the image's USER, which may be root, so it is
// Required. Fix: set the pod's runAsUser to the first allowed UID.
// Windows pods (spec.os.name: windows) cannot set runAsUser: nothing is
// required or injected, an explicit disallowed value is still reported, and
// windowsOptions.runAsUserName ContainerAdministrator is a warning.

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/imagetrust"
	"podguard.dev/podguard/policies/podspec"
)

func init() {
	Register(Definition{
		Reads: podspec.Fields{"os", "securityContext.runAsUser", "securityContext.windowsOptions.runAsUserName", "*containers.securityContext.runAsUser", "*containers.securityContext.windowsOptions.runAsUserName",
			// imageUser: what the image declares, against the container.
			"*containers.image", "*containers.volumeMounts", "*containers.securityContext.capabilities", "securityContext.sysctls"},
		ID: "runAsUser", Order: 10, Action: v1alpha1.ActionEnforce, Mutate: true,
		Checklist: ItemNonRoot,
		Doc: `Containers run as one of these UIDs (IDs, or ranges such as
{min: 10000, max: 65535}); the first is injected as the pod's
securityContext.runAsUser when neither pod nor container sets one.
overrides give the containers of some images or namespaces their own
list (e.g. images: ["docker.io/bitnami/*"], allowedUIDs: [1001]).
imageUser (off by default; warn or enforce) reads each image's config
from its registry and reports an image built to run as root, or as
another user than the one it runs as here, before it crash-loops; it
also warns of ports below 1024 the image exposes and volumes it declares
that the UID here may not be able to use.`,
		PSS:    []PSSCheck{{ID: "runAsUser", Level: Restricted}},
		CIS:    []string{"5.2.7", "5.7.3"},
		Params: func() v1alpha1.RuleParams { return &RunAsUserParams{} },
		New:    newRunAsUser,
		Native: nativeRunAsUser,
	})
}

// runAsUserShape is the rule's one pod-default shape, for Check, Fix and
// CEL alike.
func runAsUserShape(p *v1alpha1.Policy) (podDefault[int64], idList) {
	ps := params[*RunAsUserParams](p, "runAsUser")
	var os []idOverride
	for _, o := range ps.Overrides {
		os = append(os, o.generic())
	}
	return idDefault("runAsUser", ps.AllowedUIDs, os,
		func(sc *corev1.PodSecurityContext) *int64 { return sc.RunAsUser },
		func(sc *corev1.SecurityContext) *int64 { return sc.RunAsUser }), ps.AllowedUIDs
}

func newRunAsUser(p *v1alpha1.Policy) Rule {
	s, allowed := runAsUserShape(p)
	imageUser := params[*RunAsUserParams](p, "runAsUser").ImageUser
	return Rule{
		ID:      "runAsUser",
		Summary: fmt.Sprintf("containers run as UID %s%s", allowed, overridesNote(len(s.overrides))),
		Check: func(t *podspec.Target) []Finding {
			out := s.check(t)
			if t.Windows() {
				out = append(out, windowsAdmin(t)...)
			} else if imageUser == v1alpha1.ActionWarn || imageUser == v1alpha1.ActionEnforce {
				out = append(out, imageUserFindings(t, s, imageUser == v1alpha1.ActionWarn)...)
			}
			return out
		},
		Fix: s.fix,
	}
}

const windowsAdminUser = "ContainerAdministrator"

func windowsAdmin(t *podspec.Target) []Finding {
	var out []Finding
	podAdmin := false
	if sc := t.Spec.SecurityContext; sc != nil && sc.WindowsOptions != nil && sc.WindowsOptions.RunAsUserName != nil {
		podAdmin = *sc.WindowsOptions.RunAsUserName == windowsAdminUser
		if podAdmin && !t.ContainersOnly {
			p := t.PodSecurityContextPath().Child("windowsOptions", "runAsUserName")
			out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(), Advisory: true,
				Message: "the pod runs as ContainerAdministrator, the Windows administrator",
				Fix:     fmt.Sprintf("set %s: ContainerUser", p)})
		}
	}
	for _, c := range t.Containers {
		if c.SecurityContext != nil && c.SecurityContext.WindowsOptions != nil && c.SecurityContext.WindowsOptions.RunAsUserName != nil {
			if *c.SecurityContext.WindowsOptions.RunAsUserName == windowsAdminUser {
				p := c.SecurityContextPath().Child("windowsOptions", "runAsUserName")
				out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: p.String(), Advisory: true,
					Message: fmt.Sprintf("container %q runs as ContainerAdministrator, the Windows administrator", c.Name),
					Fix:     fmt.Sprintf("set %s: ContainerUser", p)})
			}
		}
	}
	return out
}

// RunAsUserParams are the runAsUser rule's parameters.
type RunAsUserParams struct {
	// AllowedUIDs are the user IDs containers may run as: IDs (1000) and
	// ranges ({min: 10000, max: 65535}). The first is injected when none
	// is set (a range's min). Default [1000]; an empty list is an error.
	// 0 (root) is never allowed.
	AllowedUIDs []v1alpha1.IDRange `json:"allowedUIDs,omitempty"`
	// Overrides give the containers of some namespaces or images their
	// own allowed UIDs instead (an image built to run as 1001); the first
	// that matches a container decides, and injects its first UID.
	Overrides []UIDOverride `json:"overrides,omitempty"`
	// ImageUser, warn or enforce, reads the user each image's config
	// declares (the webhook asks the registry; the CLI with
	// --verify-images) and reports an image built to run as root, or as
	// another UID than it runs as here: a warning, or under enforce a
	// finding of this rule's action. Ports below 1024 the image exposes
	// and volumes it declares that the UID may not use are warnings under
	// either. Default off: no registry is asked. Where the config cannot
	// be read, nothing is reported.
	ImageUser v1alpha1.Action `json:"imageUser,omitempty"`
}

// ImageUserRead reports whether the policy asks for the images' users.
func ImageUserRead(p *v1alpha1.Policy) bool {
	if EffectiveAction(p, "runAsUser") == v1alpha1.ActionOff {
		return false
	}
	m := params[*RunAsUserParams](p, "runAsUser").ImageUser
	return m == v1alpha1.ActionWarn || m == v1alpha1.ActionEnforce
}

// imageUserFindings compares each container's UID with the user its
// image declares: what runs as root by default, or as another UID than
// its image expects, may fail once podguard has set the UID. Two more
// consequences of the UID are warnings only, whatever imageUser's action,
// since whether they fail depends on the node and on the image's files:
// a port below 1024 it exposes, and a volume it declares that no mount
// covers (the runtime creates it with the image's ownership).
func imageUserFindings(t *podspec.Target, s podDefault[int64], advisory bool) []Finding {
	if t.ImageConfigs == nil {
		return nil
	}
	var podUID *int64
	if t.Spec.SecurityContext != nil {
		podUID = t.Spec.SecurityContext.RunAsUser
	}
	var out []Finding
	for _, c := range t.Containers {
		cfg, known := t.ImageConfigs[c.Image]
		uid := podUID
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			uid = c.SecurityContext.RunAsUser
		}
		if !known || uid == nil {
			continue // offline, or nothing set: the rule's own finding says so
		}
		name, _, _ := strings.Cut(cfg.User, ":")
		n, err := strconv.ParseInt(name, 10, 64)
		root := name == "" || name == "root" || (err == nil && n == 0)
		f := Finding{Type: field.ErrorTypeInvalid, Field: c.Path().Child("image").String(), Advisory: advisory}
		switch {
		case root:
			// Warnings are cut at 256 characters: the reference last.
			f.Message = fmt.Sprintf("container %q: its image runs as root by default; it runs as UID %d here: check that it can (image %q)", c.Name, *uid, c.Image)
			f.Fix = "build the image to run as a non-root user (USER 1000 in its Dockerfile), owning what it writes"
		case err == nil && n != *uid:
			_, ok, want, _ := s.choice(t, c)
			f.Message = fmt.Sprintf("container %q: its image is built to run as UID %d; it runs as UID %d here: check that it can (image %q)", c.Name, n, *uid, c.Image)
			f.Fix = fmt.Sprintf("set runAsUser: %d for container %q", n, c.Name)
			if !ok(n) {
				f.Fix = fmt.Sprintf("UID %d is not allowed (allowed: %s): rebuild the image for an allowed UID, or a platform team allows %d for this image (rules.runAsUser.overrides)", n, want, n)
			}
		case err != nil:
			f.Message = fmt.Sprintf("container %q: its image runs as user %q, a name resolved at run time; it runs as UID %d here: check that it can (image %q)", c.Name, cfg.User, *uid, c.Image)
			f.Fix = "build the image with a numeric USER (USER 1000) so the UID is known before it runs"
		}
		if f.Message != "" {
			out = append(out, f)
		}
		if *uid != 0 {
			out = append(out, imagePortFindings(t, c, cfg, *uid)...)
		}
		// A volume keeps the image's ownership: a problem when the image
		// was built for root or for another UID than it runs as here.
		if *uid != 0 && (root || (err == nil && n != *uid)) {
			out = append(out, imageVolumeFindings(c, cfg, *uid)...)
		}
	}
	return out
}

// unprivilegedPortSysctl lowers the first port an unprivileged process may
// bind (a safe sysctl, set per pod).
const unprivilegedPortSysctl = "net.ipv4.ip_unprivileged_port_start"

// imagePortFindings warns of the ports below 1024 container c's image
// exposes when c, running as non-root uid, may not bind them: without
// NET_BIND_SERVICE, and unless the pod's sysctls lower the threshold.
// Nodes differ (containerd 2 lets pods bind any port by default; 1.x
// does not), hence a warning.
func imagePortFindings(t *podspec.Target, c podspec.Container, cfg imagetrust.ImageConfig, uid int64) []Finding {
	if c.SecurityContext != nil && c.SecurityContext.Capabilities != nil && slices.ContainsFunc(c.SecurityContext.Capabilities.Add, func(cp corev1.Capability) bool {
		return strings.TrimPrefix(strings.ToUpper(string(cp)), "CAP_") == "NET_BIND_SERVICE"
	}) {
		return nil
	}
	start := int64(1024)
	if sc := t.Spec.SecurityContext; sc != nil {
		for _, sy := range sc.Sysctls {
			if sy.Name == unprivilegedPortSysctl {
				if v, err := strconv.ParseInt(sy.Value, 10, 64); err == nil {
					start = v
				}
			}
		}
	}
	var low []string
	for _, p := range cfg.ExposedPorts {
		num, _, _ := strings.Cut(p, "/")
		if n, err := strconv.ParseInt(num, 10, 64); err == nil && n > 0 && n < start {
			low = append(low, num)
		}
	}
	if len(low) == 0 {
		return nil
	}
	return []Finding{{Type: field.ErrorTypeInvalid, Field: c.Path().Child("image").String(), Advisory: true,
		Message: fmt.Sprintf("container %q: its image exposes port %s, below 1024; as UID %d without NET_BIND_SERVICE it may not bind it (image %q)", c.Name, strings.Join(low, ", "), uid, c.Image),
		Fix:     fmt.Sprintf("listen on a port of 1024 or more, add NET_BIND_SERVICE to container %q's capabilities, or set the pod sysctl %s=%s", c.Name, unprivilegedPortSysctl, low[0]),
	}}
}

// imageVolumeFindings warns of the volumes container c's image declares
// at a path no mount of c covers: the runtime creates them with the
// image's ownership, which uid may not be allowed to write.
func imageVolumeFindings(c podspec.Container, cfg imagetrust.ImageConfig, uid int64) []Finding {
	var out []Finding
	for _, v := range cfg.Volumes {
		p := path.Clean("/" + v)
		if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			mp := path.Clean("/" + m.MountPath)
			return mp == p || mp == "/" || strings.HasPrefix(p, mp+"/")
		}) {
			continue
		}
		out = append(out, Finding{Type: field.ErrorTypeInvalid, Field: c.Path().Child("volumeMounts").String(), Advisory: true,
			Message: fmt.Sprintf("container %q: its image declares VOLUME %s, created with the image's ownership; as UID %d it may not write there (image %q)", c.Name, p, uid, c.Image),
			Fix:     fmt.Sprintf("mount an emptyDir at %s in container %q (the pod's fsGroup makes it writable)", p, c.Name),
		})
	}
	return out
}

// UIDOverride is one entry of runAsUser's overrides.
type UIDOverride struct {
	// Namespaces are globs over the namespace; empty means any.
	Namespaces []string `json:"namespaces,omitempty"`
	// Images are globs over the container's image; empty means any.
	Images []string `json:"images,omitempty"`
	// AllowedUIDs replace the rule's for the containers in scope.
	AllowedUIDs []v1alpha1.IDRange `json:"allowedUIDs"`
}

func (o UIDOverride) generic() idOverride {
	return idOverride{namespaces: o.Namespaces, images: o.Images, ids: o.AllowedUIDs}
}

const uidRootMsg = "UID 0 is root; the policy requires a non-root user"

// Default sets AllowedUIDs to [1000] when left out.
func (r *RunAsUserParams) Default() {
	if r.AllowedUIDs == nil {
		r.AllowedUIDs = []v1alpha1.IDRange{v1alpha1.ID(v1alpha1.DefaultUID)}
	}
	if r.ImageUser == "" {
		r.ImageUser = v1alpha1.ActionOff
	}
}

// Validate refuses an empty list, root, and out-of-range or duplicate IDs.
func (r *RunAsUserParams) Validate(path *field.Path) field.ErrorList {
	errs := validateIDList(r.AllowedUIDs, path.Child("allowedUIDs"), uidRootMsg, fmt.Sprintf("[%d]", v1alpha1.DefaultUID))
	switch r.ImageUser {
	case v1alpha1.ActionOff, v1alpha1.ActionWarn, v1alpha1.ActionEnforce:
	default:
		errs = append(errs, field.NotSupported(path.Child("imageUser"), r.ImageUser, []string{"off", "warn", "enforce"}))
	}
	for i, o := range r.Overrides {
		errs = append(errs, validateOverride(o.generic(), path.Child("overrides").Index(i), "allowedUIDs", uidRootMsg)...)
	}
	return errs
}

func nativeRunAsUser(p *v1alpha1.Policy, mode NativeMode) Native {
	s, allowed := runAsUserShape(p)
	return s.native(p, mode, allowed.CEL,
		func(x string) string { return "string(" + x + ")" }, func(v string) []Injection {
			return []Injection{{Path: []string{"securityContext", "runAsUser"}, Value: v}}
		})
}
