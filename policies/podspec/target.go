// Package podspec finds the pod spec inside every kind podguard judges and
// hands the rules a uniform view of it: the spec, the pod metadata, the
// containers of all three kinds, and the field paths from the object's root.
package podspec

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"podguard.dev/podguard/policies/imagetrust"
)

// ContainerKind tells the three lists of containers apart.
type ContainerKind int

const (
	// InitContainer is an entry of spec.initContainers (including native sidecars).
	InitContainer ContainerKind = iota
	// RegularContainer is an entry of spec.containers.
	RegularContainer
	// EphemeralContainer is an entry of spec.ephemeralContainers.
	EphemeralContainer
)

// String returns the API field name of the container list.
func (k ContainerKind) String() string {
	switch k {
	case InitContainer:
		return "initContainers"
	case EphemeralContainer:
		return "ephemeralContainers"
	default:
		return "containers"
	}
}

// Container is one container of a pod spec with its position.
type Container struct {
	*corev1.Container
	Kind  ContainerKind
	Index int
	// specPath is the pod spec's path; the container's own path is built
	// only when a finding or a change needs it.
	specPath Path
}

// Path returns the container's path from the object root, e.g.
// spec.template.spec.initContainers[1].
func (c Container) Path() Path {
	p := make(Path, len(c.specPath), len(c.specPath)+4)
	copy(p, c.specPath)
	return append(p, Segment{Field: c.Kind.String()}, Segment{Index: c.Index})
}

// SecurityContextPath returns the path of the container's securityContext.
func (c Container) SecurityContextPath() Path { return c.Path().Child("securityContext") }

// Sidecar reports whether c is a native sidecar: an init container that keeps
// running for the pod's lifetime.
func (c Container) Sidecar() bool {
	return c.Kind == InitContainer && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// Target is one pod spec to judge or fix.
type Target struct {
	// Object is the typed root object the paths start from.
	Object runtime.Object
	// Kind is the object's group and kind.
	Kind schema.GroupKind
	// ObjectMeta is the root object's metadata (name, namespace, owners).
	ObjectMeta *metav1.ObjectMeta
	// Digests maps image references to the digest each resolves to now
	// ("sha256:..."), as the caller looked them up for this request: the
	// engine does no I/O, it is handed what the registry said.
	Digests map[string]string
	// ImageVerdicts are the verdicts of imageSignatures' verification of
	// this request's images, as the caller verified them; nil where no
	// verifier ran (offline).
	ImageVerdicts imagetrust.Verdicts
	// ImageScans are the verdicts of imageVulnerabilities' scan
	// attestations, with what each verified one reports; nil offline.
	ImageScans imagetrust.Verdicts
	// ImageConfigs maps image references to what their image config
	// declares (USER, EXPOSE, VOLUME), as the caller read it from the
	// registry; nil offline, and a reference it could not read is absent.
	ImageConfigs map[string]imagetrust.ImageConfig
	// Now is the time the request is judged at (scan ages), set by the
	// engine.
	Now time.Time
	// Namespace is the namespace the object is judged in: the request's
	// (an object being created may not name one), set by the engine.
	Namespace string
	// PodMeta is the pod's metadata: the object's own for a Pod, the
	// template's for everything else. PSA reads AppArmor annotations here.
	PodMeta *metav1.ObjectMeta
	// PodMetaPath is the path of PodMeta from the root.
	PodMetaPath Path
	// Spec is the pod spec, modified in place by mutation.
	Spec *corev1.PodSpec
	// SpecPath is the path of Spec from the root.
	SpecPath Path
	// Template is true when Spec is a pod template rather than a Pod.
	Template bool
	// JobPod is true for pods run to completion: Job and CronJob templates and
	// Pods owned by a Job.
	JobPod bool
	// Containers are the containers a rule looks at. The engine narrows this
	// list per rule (container exemptions, only new ephemeral containers).
	Containers []Container
	// ContainersOnly restricts a rule to container-level checks and fixes:
	// used when only new ephemeral containers of an existing pod are judged,
	// since the rest of the pod spec can no longer change.
	ContainersOnly bool

	// buf holds Containers for typical pods, saving an allocation per call.
	buf [4]Container
}

// Windows reports whether the pod is a Windows pod. As in the API server and
// PSA, only spec.os.name says so; a nodeSelector does not.
func (t *Target) Windows() bool {
	return t.Spec.OS != nil && t.Spec.OS.Name == corev1.Windows
}

// PodSecurityContextPath returns the path of the pod-level securityContext.
func (t *Target) PodSecurityContextPath() Path { return t.SpecPath.Child("securityContext") }

// SupportedKinds lists the group/kinds whose pod specs podguard judges, in
// every API version that keeps the pod spec at the same path.
var SupportedKinds = []schema.GroupKind{
	{Kind: "Pod"},
	{Kind: "PodTemplate"},
	{Kind: "ReplicationController"},
	{Group: "apps", Kind: "Deployment"},
	{Group: "apps", Kind: "ReplicaSet"},
	{Group: "apps", Kind: "StatefulSet"},
	{Group: "apps", Kind: "DaemonSet"},
	{Group: "extensions", Kind: "Deployment"},
	{Group: "extensions", Kind: "ReplicaSet"},
	{Group: "extensions", Kind: "DaemonSet"},
	{Group: "batch", Kind: "Job"},
	{Group: "batch", Kind: "CronJob"},
}

// servedAPIVersions are the API versions that serve each pod-bearing kind
// today, the first the one to write.
var servedAPIVersions = map[string][]string{
	"Pod": {"v1"}, "PodTemplate": {"v1"}, "ReplicationController": {"v1"},
	"Deployment": {"apps/v1"}, "ReplicaSet": {"apps/v1"}, "StatefulSet": {"apps/v1"}, "DaemonSet": {"apps/v1"},
	"Job": {"batch/v1"}, "CronJob": {"batch/v1"},
}

// SkipReason says why an object of this group and kind is not judged: a
// pod-bearing kind under an API group that does not serve it ("apps/v1
// expected" for a v1 Deployment, a typo people make), or a kind that
// carries no pod spec. misplaced is true in the first case.
func SkipReason(apiVersion, kind string) (reason string, misplaced bool) {
	if versions, ok := servedAPIVersions[kind]; ok {
		return fmt.Sprintf("%s does not serve %s: %s expected", apiVersion, kind, strings.Join(versions, " or ")), true
	}
	return "not a pod-bearing kind", false
}

// NewObject returns an empty typed object for a supported group/kind, or
// false. Old API versions are decoded into the current types: their pod spec
// sits at the same path, which is all podguard reads.
func NewObject(gk schema.GroupKind) (runtime.Object, bool) {
	switch gk {
	case schema.GroupKind{Kind: "Pod"}:
		return &corev1.Pod{}, true
	case schema.GroupKind{Kind: "PodTemplate"}:
		return &corev1.PodTemplate{}, true
	case schema.GroupKind{Kind: "ReplicationController"}:
		return &corev1.ReplicationController{}, true
	case schema.GroupKind{Group: "apps", Kind: "Deployment"}, schema.GroupKind{Group: "extensions", Kind: "Deployment"}:
		return &appsv1.Deployment{}, true
	case schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, schema.GroupKind{Group: "extensions", Kind: "ReplicaSet"}:
		return &appsv1.ReplicaSet{}, true
	case schema.GroupKind{Group: "apps", Kind: "StatefulSet"}:
		return &appsv1.StatefulSet{}, true
	case schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, schema.GroupKind{Group: "extensions", Kind: "DaemonSet"}:
		return &appsv1.DaemonSet{}, true
	case schema.GroupKind{Group: "batch", Kind: "Job"}:
		return &batchv1.Job{}, true
	case schema.GroupKind{Group: "batch", Kind: "CronJob"}:
		return &batchv1.CronJob{}, true
	}
	return nil, false
}

// Find returns the pod spec target of a typed object, or false when the
// object carries no pod spec podguard knows (or its template is absent).
func Find(obj runtime.Object) (*Target, bool) {
	t := &Target{Object: obj}
	switch o := obj.(type) {
	case *corev1.Pod:
		t.Kind = schema.GroupKind{Kind: "Pod"}
		t.ObjectMeta, t.PodMeta, t.PodMetaPath = &o.ObjectMeta, &o.ObjectMeta, NewPath("metadata")
		t.Spec, t.SpecPath = &o.Spec, NewPath("spec")
		for _, ref := range o.OwnerReferences {
			if ref.Kind == "Job" && (ref.APIVersion == "batch/v1" || ref.APIVersion == "batch/v1beta1") {
				t.JobPod = true
			}
		}
	case *corev1.PodTemplate:
		t.Kind = schema.GroupKind{Kind: "PodTemplate"}
		t.template(&o.ObjectMeta, &o.Template, NewPath("template"))
	case *corev1.ReplicationController:
		t.Kind = schema.GroupKind{Kind: "ReplicationController"}
		if o.Spec.Template == nil {
			return nil, false
		}
		t.template(&o.ObjectMeta, o.Spec.Template, NewPath("spec", "template"))
	case *appsv1.Deployment:
		t.Kind = schema.GroupKind{Group: "apps", Kind: "Deployment"}
		t.template(&o.ObjectMeta, &o.Spec.Template, NewPath("spec", "template"))
	case *appsv1.ReplicaSet:
		t.Kind = schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}
		t.template(&o.ObjectMeta, &o.Spec.Template, NewPath("spec", "template"))
	case *appsv1.StatefulSet:
		t.Kind = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
		t.template(&o.ObjectMeta, &o.Spec.Template, NewPath("spec", "template"))
	case *appsv1.DaemonSet:
		t.Kind = schema.GroupKind{Group: "apps", Kind: "DaemonSet"}
		t.template(&o.ObjectMeta, &o.Spec.Template, NewPath("spec", "template"))
	case *batchv1.Job:
		t.Kind = schema.GroupKind{Group: "batch", Kind: "Job"}
		t.template(&o.ObjectMeta, &o.Spec.Template, NewPath("spec", "template"))
		t.JobPod = true
	case *batchv1.CronJob:
		t.Kind = schema.GroupKind{Group: "batch", Kind: "CronJob"}
		t.template(&o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template, NewPath("spec", "jobTemplate", "spec", "template"))
		t.JobPod = true
	default:
		return nil, false
	}
	t.Containers = appendContainers(t.buf[:0], t.Spec, t.SpecPath)
	return t, true
}

func (t *Target) template(meta *metav1.ObjectMeta, tmpl *corev1.PodTemplateSpec, path Path) {
	t.ObjectMeta = meta
	t.PodMeta, t.PodMetaPath = &tmpl.ObjectMeta, path.Child("metadata")
	t.Spec, t.SpecPath = &tmpl.Spec, path.Child("spec")
	t.Template = true
}

// appendContainers lists every container of a pod spec: init, regular,
// then ephemeral, as PSA visits them.
func appendContainers(out []Container, spec *corev1.PodSpec, specPath Path) []Container {
	for i := range spec.InitContainers {
		out = append(out, Container{Container: &spec.InitContainers[i], Kind: InitContainer, Index: i, specPath: specPath})
	}
	for i := range spec.Containers {
		out = append(out, Container{Container: &spec.Containers[i], Kind: RegularContainer, Index: i, specPath: specPath})
	}
	for i := range spec.EphemeralContainers {
		c := (*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon)
		out = append(out, Container{Container: c, Kind: EphemeralContainer, Index: i, specPath: specPath})
	}
	return out
}

// ImageVolume is a volume of the pod that is an OCI image
// (volumes[i].image, GA in Kubernetes 1.36): an image the pod pulls, like
// a container's.
type ImageVolume struct {
	// Index is the volume's position in spec.volumes.
	Index int
	// Name is the volume's name.
	Name string
	// Reference is the image reference.
	Reference string
	// Path is the reference's field path from the object root:
	// spec.volumes[i].image.reference.
	Path Path
}

// ImageVolumes returns the pod's image volumes; none when only containers
// are judged (ContainersOnly).
func (t *Target) ImageVolumes() []ImageVolume {
	if t.ContainersOnly {
		return nil
	}
	var out []ImageVolume
	for i, v := range t.Spec.Volumes {
		if v.Image != nil {
			out = append(out, ImageVolume{Index: i, Name: v.Name, Reference: v.Image.Reference,
				Path: t.SpecPath.Child("volumes").Index(i).Child("image", "reference")})
		}
	}
	return out
}

// Image is one image a pod runs: a container's (of any kind) or an image
// volume's. Every image rule reads them through Images, so none can
// forget a kind of image.
type Image struct {
	// Reference is the image reference as written.
	Reference string
	// Path is the reference's field path from the object root:
	// ...containers[i].image or ...volumes[i].image.reference.
	Path Path
	// Volume is the image volume; nil for a container's image.
	Volume *ImageVolume
	// Container is the container's name; "" for an image volume.
	Container string
}

// Of names what runs the image, for messages: container "app" or image
// volume "model".
func (i Image) Of() string {
	if i.Volume != nil {
		return fmt.Sprintf("image volume %q", i.Volume.Name)
	}
	return fmt.Sprintf("container %q", i.Container)
}

// Images returns every image the pod runs: its containers' (in
// Containers' order), then its image volumes'.
func (t *Target) Images() []Image {
	out := make([]Image, 0, len(t.Containers))
	for _, c := range t.Containers {
		out = append(out, Image{Reference: c.Image, Path: c.Path().Child("image"), Container: c.Name})
	}
	for _, v := range t.ImageVolumes() {
		out = append(out, Image{Reference: v.Reference, Path: v.Path, Volume: &v})
	}
	return out
}
