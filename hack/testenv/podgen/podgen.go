// Package podgen generates pods for differential tests: the values that
// matter to the Pod Security Standards and to podguard's rules, drawn with
// a seeded random source so a failure can be replayed.
package podgen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func pick[T any](r *rand.Rand, vals ...T) T { return vals[r.IntN(len(vals))] }

// maybe sets a value one time in four: most generated pods then have
// only a few explicit values, so a single wrong check shows.
func maybe[T any](r *rand.Rand, v T) *T {
	if r.IntN(4) != 0 {
		return nil
	}
	return &v
}

// Pod generates a pod from the values that matter to the Pod Security
// Standards and to podguard: most explicit values appear one time in four,
// so that a single wrong check shows.
func Pod(r *rand.Rand, i int) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("gen-%d", i)}}
	s := &p.Spec
	if r.IntN(6) == 0 {
		s.OS = &corev1.PodOS{Name: corev1.Windows}
	}
	s.HostNetwork = r.IntN(20) == 0
	s.HostPID = r.IntN(20) == 0
	s.HostIPC = r.IntN(20) == 0
	if r.IntN(5) == 0 {
		s.HostUsers = ptr.To(false)
	}
	if r.IntN(4) > 0 {
		sc := &corev1.PodSecurityContext{
			RunAsUser:    maybe(r, pick[int64](r, 0, 1000, 1000, 1000, 2000)),
			RunAsGroup:   maybe(r, pick[int64](r, 0, 1000, 1000, 1000, 3000)),
			RunAsNonRoot: maybe(r, r.IntN(4) != 0),
			FSGroup:      maybe(r, pick[int64](r, 0, 1000, 1000, 1000)),
		}
		if r.IntN(2) == 0 {
			sc.SeccompProfile = &corev1.SeccompProfile{Type: pick(r, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined)}
		}
		if r.IntN(8) == 0 {
			sc.Sysctls = []corev1.Sysctl{{Name: pick(r, "net.ipv4.tcp_syncookies", "kernel.msgmax", "net.ipv4.tcp_notsent_lowat")}}
		}
		if r.IntN(8) == 0 {
			sc.SELinuxOptions = &corev1.SELinuxOptions{Type: pick(r, "container_t", "spc_t", ""), User: pick(r, "", "u")}
		}
		if r.IntN(8) == 0 {
			sc.AppArmorProfile = &corev1.AppArmorProfile{Type: pick(r, corev1.AppArmorProfileTypeRuntimeDefault, corev1.AppArmorProfileTypeUnconfined)}
		}
		if r.IntN(10) == 0 {
			sc.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(r.IntN(2) == 0)}
		}
		s.SecurityContext = sc
	}
	if r.IntN(8) == 0 {
		p.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/c0": pick(r, "runtime/default", "unconfined", "localhost/x")}
	}
	for v := range r.IntN(3) {
		vol := corev1.Volume{Name: fmt.Sprintf("v%d", v)}
		switch r.IntN(8) {
		case 0:
			vol.HostPath = &corev1.HostPathVolumeSource{Path: "/"}
		case 1:
			vol.EmptyDir = &corev1.EmptyDirVolumeSource{}
		case 2:
			vol.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}
		case 3:
			vol.ConfigMap = &corev1.ConfigMapVolumeSource{}
		}
		s.Volumes = append(s.Volumes, vol)
	}
	nc := 1 + r.IntN(3)
	for c := range nc {
		ctr := container(r, fmt.Sprintf("c%d", c))
		switch r.IntN(5) {
		case 0:
			s.InitContainers = append(s.InitContainers, ctr)
		case 1:
			s.EphemeralContainers = append(s.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon(ctr)})
		default:
			s.Containers = append(s.Containers, ctr)
		}
	}
	return p
}

func container(r *rand.Rand, name string) corev1.Container {
	c := corev1.Container{Name: name, Image: "registry.example/app:1"}
	if r.IntN(6) == 0 {
		c.Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: pick[int32](r, 0, 8080)}}
	}
	if r.IntN(8) == 0 {
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: pick(r, "", "10.0.0.1")}}}
	}
	if r.IntN(2) == 0 {
		return c
	}
	sc := &corev1.SecurityContext{
		RunAsUser:                maybe(r, pick[int64](r, 0, 1000, 1000, 1000, 2000)),
		RunAsGroup:               maybe(r, pick[int64](r, 0, 1000, 1000, 1000)),
		RunAsNonRoot:             maybe(r, r.IntN(4) != 0),
		AllowPrivilegeEscalation: maybe(r, r.IntN(4) == 0),
		Privileged:               maybe(r, r.IntN(6) == 0),
		ReadOnlyRootFilesystem:   maybe(r, r.IntN(2) == 0),
	}
	if r.IntN(3) == 0 {
		caps := &corev1.Capabilities{}
		for range r.IntN(3) {
			caps.Drop = append(caps.Drop, pick[corev1.Capability](r, "ALL", "NET_RAW", "all"))
		}
		for range r.IntN(2) {
			caps.Add = append(caps.Add, pick[corev1.Capability](r, "NET_BIND_SERVICE", "NET_BIND_SERVICE", "NET_BIND_SERVICE", "SYS_ADMIN", "CHOWN"))
		}
		sc.Capabilities = caps
	}
	if r.IntN(3) == 0 {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: pick(r, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined, corev1.SeccompProfileTypeLocalhost)}
	}
	if r.IntN(10) == 0 {
		sc.ProcMount = ptr.To(pick(r, corev1.DefaultProcMount, corev1.UnmaskedProcMount))
	}
	if r.IntN(10) == 0 {
		sc.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(r.IntN(2) == 0)}
	}
	if r.IntN(10) == 0 {
		sc.SELinuxOptions = &corev1.SELinuxOptions{Role: pick(r, "", "r")}
	}
	c.SecurityContext = sc
	return c
}

// APIValid changes a generated pod just enough for kube-apiserver's own
// validation to accept it, keeping what podguard judges: tests that go
// through a real API server would otherwise exercise only its validation.
func APIValid(p *corev1.Pod) {
	s := &p.Spec
	s.Containers = append(s.Containers, ephemeralAsRegular(s.EphemeralContainers)...)
	s.EphemeralContainers = nil
	if len(s.Containers) == 0 {
		s.Containers = []corev1.Container{{Name: "main", Image: "registry.example/app:1"}}
	}
	windows := s.OS != nil && s.OS.Name == corev1.Windows
	for i := range s.Volumes {
		if cm := s.Volumes[i].ConfigMap; cm != nil && cm.Name == "" {
			cm.Name = "cm"
		}
	}
	if sc := s.SecurityContext; sc != nil {
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeLocalhost {
			sc.SeccompProfile.LocalhostProfile = ptr.To("profile.json")
		}
		if sc.WindowsOptions != nil && !windows {
			sc.WindowsOptions = nil
		}
		if windows {
			// The API refuses Linux-only fields on Windows pods.
			sc.RunAsUser, sc.RunAsGroup, sc.FSGroup, sc.SeccompProfile, sc.SELinuxOptions, sc.Sysctls, sc.AppArmorProfile = nil, nil, nil, nil, nil, nil, nil
			if sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil && *sc.WindowsOptions.HostProcess {
				s.HostNetwork = true
			}
		}
	}
	if windows {
		s.HostPID, s.HostIPC, s.HostUsers = false, false, nil
		p.Annotations = nil
	}
	port := int32(8080)
	fix := func(c *corev1.Container) {
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil {
			c.LivenessProbe.HTTPGet.Port = intstrFromInt(8080)
		}
		for j := range c.Ports {
			// Ports must differ between containers.
			c.Ports[j].ContainerPort = port
			if c.Ports[j].HostPort != 0 {
				c.Ports[j].HostPort = port
			}
			port++
		}
		sc := c.SecurityContext
		if sc == nil {
			return
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeLocalhost {
			sc.SeccompProfile.LocalhostProfile = ptr.To("profile.json")
		}
		if sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount && !windows {
			s.HostUsers = ptr.To(false)
		}
		if sc.WindowsOptions != nil && !windows {
			sc.WindowsOptions = nil
		}
		if windows {
			sc.RunAsUser, sc.RunAsGroup, sc.SeccompProfile, sc.SELinuxOptions, sc.Capabilities, sc.ProcMount, sc.AppArmorProfile = nil, nil, nil, nil, nil, nil, nil
			sc.Privileged, sc.AllowPrivilegeEscalation, sc.ReadOnlyRootFilesystem = nil, nil, nil
			if sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil && *sc.WindowsOptions.HostProcess {
				s.HostNetwork = true
				for j := range c.Ports {
					c.Ports[j].HostPort = c.Ports[j].ContainerPort
				}
			}
		}
		// The API forces privilege escalation on privileged containers and
		// those adding SYS_ADMIN, and refuses false there.
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && (sc.Privileged != nil && *sc.Privileged ||
			sc.Capabilities != nil && slices.Contains(sc.Capabilities.Add, "SYS_ADMIN")) {
			sc.AllowPrivilegeEscalation = nil
		}
	}
	for i := range s.InitContainers {
		fix(&s.InitContainers[i])
		// Probes need restartPolicy Always on an init container.
		if s.InitContainers[i].RestartPolicy == nil {
			s.InitContainers[i].LivenessProbe = nil
		}
	}
	for i := range s.Containers {
		fix(&s.Containers[i])
	}
	// HostProcess must be all or nothing, and needs hostNetwork.
	hostProcess := windows && s.SecurityContext != nil && s.SecurityContext.WindowsOptions != nil && s.SecurityContext.WindowsOptions.HostProcess != nil && *s.SecurityContext.WindowsOptions.HostProcess
	for _, list := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range list {
			if sc := list[i].SecurityContext; sc != nil && sc.WindowsOptions != nil && sc.WindowsOptions.HostProcess != nil {
				sc.WindowsOptions.HostProcess = ptr.To(hostProcess)
			}
		}
	}
	// hostUsers: false forbids every host namespace; Unmasked needs it.
	if s.HostNetwork || s.HostPID || s.HostIPC {
		s.HostUsers = nil
		for _, list := range [][]corev1.Container{s.InitContainers, s.Containers} {
			for i := range list {
				if sc := list[i].SecurityContext; sc != nil && sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount {
					sc.ProcMount = nil
				}
			}
		}
	}
	// AppArmor annotations name an existing container, and agree with its field.
	for k, v := range p.Annotations {
		if !strings.HasPrefix(k, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) {
			continue
		}
		delete(p.Annotations, k)
		if sc := s.Containers[0].SecurityContext; sc == nil || sc.AppArmorProfile == nil {
			p.Annotations[corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+s.Containers[0].Name] = v
		}
	}
	if s.HostNetwork {
		if sc := s.SecurityContext; sc != nil {
			// Namespaced net.* sysctls cannot be set in the host's network.
			var keep []corev1.Sysctl
			for _, x := range sc.Sysctls {
				if !strings.HasPrefix(x.Name, "net.") {
					keep = append(keep, x)
				}
			}
			sc.Sysctls = keep
		}
		for _, list := range [][]corev1.Container{s.InitContainers, s.Containers} {
			for i := range list {
				for j := range list[i].Ports {
					list[i].Ports[j].HostPort = list[i].Ports[j].ContainerPort
				}
			}
		}
	}
}

func ephemeralAsRegular(ecs []corev1.EphemeralContainer) []corev1.Container {
	out := make([]corev1.Container, len(ecs))
	for i, ec := range ecs {
		out[i] = corev1.Container(ec.EphemeralContainerCommon)
		out[i].Name = "e" + ec.Name
	}
	return out
}

func intstrFromInt(i int) intstr.IntOrString { return intstr.FromInt(i) }
