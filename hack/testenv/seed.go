package testenv

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// CompliantSpec is a pod spec the default policy admits unchanged.
func CompliantSpec(name, image string) corev1.PodSpec {
	return corev1.PodSpec{
		AutomountServiceAccountToken: ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000), RunAsNonRoot: ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: name, Image: image,
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			Resources:      corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}}},
	}
}

// Seeder creates objects as their controllers would (there are no
// controllers in a test control plane): a Deployment with its ReplicaSet
// and Pods, a CronJob with a Job and its Pod, each owned through real UIDs.
type Seeder struct {
	CS  kubernetes.Interface
	Ctx context.Context
	err error
}

// Err is the first error any call met; later calls do nothing.
func (s *Seeder) Err() error { return s.err }

func (s *Seeder) do(f func() error) {
	if s.err == nil {
		s.err = f()
	}
}

// Namespace creates a namespace.
func (s *Seeder) Namespace(name string) {
	s.do(func() error {
		_, err := s.CS.CoreV1().Namespaces().Create(s.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	})
}

// Deployment creates a Deployment, its ReplicaSet and pods Pods, all with
// the template spec, except that podSpec, when set, changes the Pods'
// (Pods created before the template was fixed).
func (s *Seeder) Deployment(ns, name string, spec corev1.PodSpec, pods int, podSpec func(i int, p *corev1.PodSpec)) {
	s.do(func() error {
		labels := map[string]string{"app": name}
		tpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}
		d, err := s.CS.AppsV1().Deployments(ns).Create(s.Ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tpl}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		rs, err := s.CS.AppsV1().ReplicaSets(ns).Create(s.Ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: d.UID, Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tpl}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		for i := range pods {
			p := spec.DeepCopy()
			if podSpec != nil {
				podSpec(i, p)
			}
			_, err := s.CS.CoreV1().Pods(ns).Create(s.Ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-1-%d", name, i), Labels: labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}},
				Spec: *p}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// CronJob creates a CronJob, one Job it owns and that Job's Pod.
func (s *Seeder) CronJob(ns, name string, spec corev1.PodSpec) {
	s.do(func() error {
		spec.RestartPolicy = corev1.RestartPolicyNever
		tpl := corev1.PodTemplateSpec{Spec: spec}
		cj, err := s.CS.BatchV1().CronJobs(ns).Create(s.Ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tpl}}}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		job, err := s.CS.BatchV1().Jobs(ns).Create(s.Ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name + "-1",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: name, UID: cj.UID, Controller: ptr.To(true)}}},
			Spec: batchv1.JobSpec{Template: tpl}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		// The API server defaulted the Job's selector and labels.
		_, err = s.CS.CoreV1().Pods(ns).Create(s.Ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-1-x", Labels: job.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}}},
			Spec: job.Spec.Template.Spec}, metav1.CreateOptions{})
		return err
	})
}

// Pod creates a bare Pod.
func (s *Seeder) Pod(ns, name string, labels map[string]string, spec corev1.PodSpec) {
	s.do(func() error {
		_, err := s.CS.CoreV1().Pods(ns).Create(s.Ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: spec}, metav1.CreateOptions{})
		return err
	})
}

// DaemonSet creates a DaemonSet (its Pods would be owned by it directly).
func (s *Seeder) DaemonSet(ns, name string, spec corev1.PodSpec) {
	s.do(func() error {
		labels := map[string]string{"app": name}
		_, err := s.CS.AppsV1().DaemonSets(ns).Create(s.Ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}},
			metav1.CreateOptions{})
		return err
	})
}

// StatefulSet creates a StatefulSet.
func (s *Seeder) StatefulSet(ns, name string, spec corev1.PodSpec) {
	s.do(func() error {
		labels := map[string]string{"app": name}
		_, err := s.CS.AppsV1().StatefulSets(ns).Create(s.Ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, ServiceName: name, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}},
			metav1.CreateOptions{})
		return err
	})
}

// NetworkPolicy creates a NetworkPolicy selecting the pods with labels
// (all pods when nil).
func (s *Seeder) NetworkPolicy(ns, name string, labels map[string]string) {
	s.do(func() error {
		_, err := s.CS.NetworkingV1().NetworkPolicies(ns).Create(s.Ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: labels}}}, metav1.CreateOptions{})
		return err
	})
}

// SeedAudit creates the audit test cluster: in namespace shop a compliant
// Deployment one of whose Pods runs as root (created before the policy), a
// Deployment mutation fixes, a privileged one, a CronJob with its Job and
// Pod, bare Pods (compliant and root), a Windows Pod and a NetworkPolicy
// selecting web; hardened third-party workloads running as other non-root
// UIDs (ingress-nginx 101:82, Argo CD's redis 999 and application
// controller 999); a DaemonSet in monitoring; a privileged DaemonSet in
// kube-system (exempt by default).
func SeedAudit(ctx context.Context, cs kubernetes.Interface) error {
	s := &Seeder{CS: cs, Ctx: ctx}
	for _, ns := range []string{"shop", "ingress-nginx", "argocd", "monitoring"} {
		s.Namespace(ns)
	}
	s.Deployment("shop", "web", CompliantSpec("web", "registry.example/shop/web:1.4.2"), 3, func(i int, p *corev1.PodSpec) {
		if i == 2 {
			p.SecurityContext.RunAsUser = ptr.To[int64](0)
			p.SecurityContext.RunAsNonRoot = nil
		}
	})
	s.Deployment("shop", "fixable", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/shop/fixable:2.0",
		LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}}}}, 1, nil)
	priv := CompliantSpec("debug", "registry.example/tools/debug:0.9")
	priv.Containers[0].SecurityContext.Privileged = ptr.To(true)
	priv.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	s.Deployment("shop", "debug-tools", priv, 1, nil)
	s.CronJob("shop", "nightly", CompliantSpec("report", "registry.example/shop/report:3.1"))
	s.Pod("shop", "bare-ok", map[string]string{"app": "bare"}, CompliantSpec("c", "registry.example/shop/bare:1.0"))
	root := CompliantSpec("c", "registry.example/shop/legacy:0.1")
	root.SecurityContext.RunAsUser, root.SecurityContext.RunAsNonRoot = ptr.To[int64](0), nil
	s.Pod("shop", "bare-root", nil, root)
	win := CompliantSpec("win", "mcr.example/windows/app:ltsc2022")
	win.OS = &corev1.PodOS{Name: corev1.Windows}
	win.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
	win.Containers[0].SecurityContext = &corev1.SecurityContext{}
	s.Pod("shop", "windows", nil, win)
	s.NetworkPolicy("shop", "web", map[string]string{"app": "web"})

	nginx := CompliantSpec("controller", "registry.k8s.io/ingress-nginx/controller:v1.15.1")
	nginx.SecurityContext.RunAsUser, nginx.SecurityContext.RunAsGroup = ptr.To[int64](101), ptr.To[int64](82)
	nginx.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
	s.Deployment("ingress-nginx", "ingress-nginx-controller", nginx, 2, nil)
	s.NetworkPolicy("ingress-nginx", "all", nil)
	redis := CompliantSpec("redis", "public.ecr.aws/docker/library/redis:8.2.2-alpine")
	redis.SecurityContext.RunAsUser, redis.SecurityContext.RunAsGroup = ptr.To[int64](999), ptr.To[int64](999)
	s.Deployment("argocd", "argocd-redis", redis, 1, nil)
	ctrl := CompliantSpec("argocd-application-controller", "quay.io/argoproj/argocd:v3.2.0")
	ctrl.SecurityContext.RunAsUser, ctrl.SecurityContext.RunAsGroup = ptr.To[int64](999), ptr.To[int64](999)
	s.StatefulSet("argocd", "argocd-application-controller", ctrl)
	s.DaemonSet("monitoring", "node-exporter", CompliantSpec("node-exporter", "quay.io/prometheus/node-exporter:v1.10.0"))
	proxy := CompliantSpec("kube-proxy", "registry.k8s.io/kube-proxy:v1.37.2")
	proxy.Containers[0].SecurityContext.Privileged = ptr.To(true)
	proxy.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	proxy.HostNetwork = true
	s.DaemonSet("kube-system", "kube-proxy", proxy)
	return s.Err()
}
