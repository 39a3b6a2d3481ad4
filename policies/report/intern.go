package report

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Interner stores the pod specs of Pods a workload owns once per distinct
// spec. An audit holds every Pod of a cluster, and the replicas of a
// workload carry the same spec; kept once, the 300 Pods of a Deployment
// cost 300 object headers and one spec. Give it slim Pods (rules.Slim):
// what remains of per-pod noise is the name of the service account token
// volume the API server generates (kube-api-access-<random>), which is
// given one name. Owned Pods are only counted in their workload's subject,
// never reported field by field, so the name does not show anywhere.
//
// The specs, labels and owner references are shared: nothing may modify
// an interned Pod's (the engine does not; Admit works on a copy).
type Interner struct {
	mu    sync.Mutex
	specs map[[sha256.Size]byte]*corev1.PodSpec
	// meta holds the labels and owner references replicas share.
	meta map[string]sharedMeta
}

type sharedMeta struct {
	labels map[string]string
	owners []metav1.OwnerReference
}

// NewInterner returns an empty Interner.
func NewInterner() *Interner {
	return &Interner{specs: map[[sha256.Size]byte]*corev1.PodSpec{}, meta: map[string]sharedMeta{}}
}

// metaKey is the labels and owner references of a Pod, as one string.
func metaKey(p *corev1.Pod) string {
	b, _ := json.Marshal(struct {
		L map[string]string       `json:"l"`
		O []metav1.OwnerReference `json:"o"`
	}{p.Labels, p.OwnerReferences})
	return string(b)
}

// tokenVolumePrefix names the volume the ServiceAccount admission plugin
// adds to a Pod for its token.
const tokenVolumePrefix = "kube-api-access-"

// Pod returns pod with its spec interned when a controller owns it, as is
// otherwise. It may modify pod.
func (in *Interner) Pod(pod *corev1.Pod) *corev1.Pod {
	if metav1.GetControllerOfNoCopy(pod) == nil {
		return pod
	}
	normalizeTokenVolume(&pod.Spec)
	b, err := json.Marshal(&pod.Spec)
	if err != nil {
		return pod
	}
	key := sha256.Sum256(b)
	mk := metaKey(pod)
	in.mu.Lock()
	defer in.mu.Unlock()
	if m, ok := in.meta[mk]; ok {
		pod.Labels, pod.OwnerReferences = m.labels, m.owners
	} else {
		in.meta[mk] = sharedMeta{pod.Labels, pod.OwnerReferences}
	}
	if s, ok := in.specs[key]; ok {
		pod.Spec = *s
		return pod
	}
	s := pod.Spec
	in.specs[key] = &s
	return pod
}

// Len is the number of distinct specs held.
func (in *Interner) Len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.specs)
}

// Retain keeps only the specs of these Pods (those still in the cache), so
// specs of Pods long gone do not accumulate.
func (in *Interner) Retain(pods []*corev1.Pod) {
	keep := map[[sha256.Size]byte]*corev1.PodSpec{}
	meta := map[string]sharedMeta{}
	for _, p := range pods {
		if metav1.GetControllerOfNoCopy(p) == nil {
			continue
		}
		if mk := metaKey(p); meta[mk].owners == nil {
			meta[mk] = sharedMeta{p.Labels, p.OwnerReferences}
		}
		b, err := json.Marshal(&p.Spec)
		if err != nil {
			continue
		}
		key := sha256.Sum256(b)
		if _, ok := keep[key]; !ok {
			s := p.Spec
			keep[key] = &s
		}
	}
	in.mu.Lock()
	in.specs, in.meta = keep, meta
	in.mu.Unlock()
}

// normalizeTokenVolume gives the generated token volume one name, in the
// volume list and in every mount of it.
func normalizeTokenVolume(s *corev1.PodSpec) {
	const name = tokenVolumePrefix + "token"
	from := ""
	for i, v := range s.Volumes {
		if strings.HasPrefix(v.Name, tokenVolumePrefix) && v.Projected != nil && v.Name != name {
			from = v.Name
			s.Volumes = append([]corev1.Volume(nil), s.Volumes...)
			s.Volumes[i].Name = name
			break
		}
	}
	if from == "" {
		return
	}
	for _, cs := range []*[]corev1.Container{&s.InitContainers, &s.Containers} {
		copied := false
		for i := range *cs {
			for j, m := range (*cs)[i].VolumeMounts {
				if m.Name != from {
					continue
				}
				if !copied {
					*cs = append([]corev1.Container(nil), *cs...)
					copied = true
				}
				mounts := append([]corev1.VolumeMount(nil), (*cs)[i].VolumeMounts...)
				mounts[j].Name = name
				(*cs)[i].VolumeMounts = mounts
			}
		}
	}
}
