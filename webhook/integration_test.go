package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const ns = "apps"

func bareSpec(name string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "registry.example/" + name + ":1.0"}}}
}

func tmpl(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: bareSpec(name)}
}

func privileged(spec *corev1.PodSpec) {
	spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true), RunAsUser: ptr.To[int64](0)}
}

// causes returns the field paths of an Invalid denial's causes.
func causes(t *testing.T, err error) []string {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("want a status error, got %v", err)
	}
	if se.ErrStatus.Reason != metav1.StatusReasonInvalid {
		t.Errorf("reason %s, want Invalid: %v", se.ErrStatus.Reason, err)
	}
	var out []string
	if se.ErrStatus.Details != nil {
		for _, c := range se.ErrStatus.Details.Causes {
			if c.Type == webhook.CauseWarning || c.Type == webhook.CauseHelp {
				continue // a denied object's warnings and the help URL follow its violations
			}
			out = append(out, c.Field)
		}
	}
	return out
}

func TestWebhook(t *testing.T) {
	c := startCluster(t, clusterConfig{policy: `apiVersion: podguard.dev/v1alpha1
kind: Policy
exemptions:
- reason: legacy workloads, until their migration
  namespaces: [legacy]
- reason: kube-system
  namespaces: [kube-system]
`})
	c.namespace(t, ns, nil)
	ctx := context.Background()

	t.Run("pod is filled in", func(t *testing.T) {
		pod, err := c.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare"}, Spec: bareSpec("app")}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("a bare pod must be admitted once filled in: %v", err)
		}
		sc := pod.Spec.SecurityContext
		if sc == nil || *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1000 || !*sc.RunAsNonRoot || *sc.FSGroup != 1000 ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod securityContext not injected: %+v", sc)
		}
		ctr := pod.Spec.Containers[0]
		if ctr.SecurityContext == nil || *ctr.SecurityContext.AllowPrivilegeEscalation || !slices.Contains(ctr.SecurityContext.Capabilities.Drop, "ALL") {
			t.Errorf("container securityContext not injected: %+v", ctr.SecurityContext)
		}
		if ctr.Resources.Limits.Cpu().String() != "500m" || ctr.Resources.Limits.Memory().String() != "512Mi" {
			t.Errorf("limits not injected: %v", ctr.Resources.Limits)
		}
	})

	t.Run("explicit values are never overwritten", func(t *testing.T) {
		spec := bareSpec("app")
		spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)}
		_, err := c.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "root"}, Spec: spec}, metav1.CreateOptions{})
		if err == nil {
			t.Fatal("runAsUser: 0 was admitted")
		}
		if got := causes(t, err); !slices.Equal(got, []string{"spec.securityContext.runAsUser"}) {
			t.Errorf("causes %v", got)
		}
		if !strings.Contains(err.Error(), "- spec.securityContext.runAsUser: runAsUser is 0; allowed: 1000; fix: set it to 1000 (podguard rule runAsUser)") {
			t.Errorf("denial does not say what to set: %v", err)
		}
	})

	t.Run("privileged pod lists every violation", func(t *testing.T) {
		spec := bareSpec("app")
		privileged(&spec)
		spec.HostNetwork = true
		spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		_, err := c.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "priv"}, Spec: spec}, metav1.CreateOptions{})
		if err == nil {
			t.Fatal("privileged pod admitted")
		}
		want := []string{"spec.containers[0].securityContext.allowPrivilegeEscalation", "spec.hostNetwork", "spec.containers[0].securityContext.privileged",
			"spec.containers[0].securityContext.runAsUser", "spec.volumes[0].hostPath"}
		got := causes(t, err)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("denial lacks %s: %v", w, got)
			}
		}
		for _, rule := range []string{"(podguard rule privileged)", "(podguard rule hostNamespaces)", "(podguard rule volumeTypes)", "(podguard rule runAsUser)"} {
			if !strings.Contains(err.Error(), rule) {
				t.Errorf("denial does not name rule %q: %v", rule, err)
			}
		}
	})

	t.Run("deployment is admitted with warnings and left as applied", func(t *testing.T) {
		cs, wc := c.withWarnings()
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: tmpl("web")}}
		got, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Template.Spec.SecurityContext != nil && got.Spec.Template.Spec.SecurityContext.RunAsUser != nil {
			t.Error("the template was mutated although mutation.templates is false")
		}
		ws := wc.All()
		// One line for what the pods receive, one per finding nothing injects.
		if len(ws) == 0 || !strings.HasPrefix(ws[0], "podguard: not in the pod template, its pods receive at admission: ") {
			t.Fatalf("no grouped warning first: %q", ws)
		}
		for _, item := range []string{"runAsUser=1000", "runAsGroup=1000", "runAsNonRoot=true", "capabilities.drop+=ALL", "allowPrivilegeEscalation=false",
			"seccompProfile.type=RuntimeDefault", "limits.cpu=500m", "limits.memory=512Mi"} {
			if !strings.Contains(ws[0], item) {
				t.Errorf("the grouped warning lacks %s: %q", item, ws[0])
			}
		}
		if !warned(ws[1:], "probes") || warned(ws[1:], "runAsUser") {
			t.Errorf("one line per unfixable finding, none for fixed ones: %q", ws)
		}
		// The API server cuts warnings only past 4096 characters in all;
		// podguard's own bound is 256 for a finding, 600 for the grouped line.
		total := 0
		for i, w := range ws {
			total += len(w)
			if i > 0 && len(w) > maxWarningLength || len(w) > 600 {
				t.Errorf("warning too long: %q", w)
			}
		}
		if total > 4096 {
			t.Errorf("warnings of %d characters in all: the API server will cut them", total)
		}
	})

	t.Run("unfixable workloads are denied at apply time", func(t *testing.T) {
		labels := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
		bad := tmpl("x")
		privileged(&bad.Spec)
		badJob := bad
		badJob.Spec.RestartPolicy = corev1.RestartPolicyNever
		objs := map[string]func() error{
			"Deployment": func() error {
				_, err := c.cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: appsv1.DeploymentSpec{Selector: labels, Template: bad}}, metav1.CreateOptions{})
				return err
			},
			"ReplicaSet": func() error {
				_, err := c.cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: appsv1.ReplicaSetSpec{Selector: labels, Template: bad}}, metav1.CreateOptions{})
				return err
			},
			"StatefulSet": func() error {
				_, err := c.cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: appsv1.StatefulSetSpec{Selector: labels, Template: bad}}, metav1.CreateOptions{})
				return err
			},
			"DaemonSet": func() error {
				_, err := c.cs.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: appsv1.DaemonSetSpec{Selector: labels, Template: bad}}, metav1.CreateOptions{})
				return err
			},
			"Job": func() error {
				_, err := c.cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: batchv1.JobSpec{Template: badJob}}, metav1.CreateOptions{})
				return err
			},
			"CronJob": func() error {
				_, err := c.cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: batchv1.CronJobSpec{Schedule: "@hourly",
					JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: badJob}}}}, metav1.CreateOptions{})
				return err
			},
			"ReplicationController": func() error {
				b := bad
				_, err := c.cs.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "x"}, Template: &b}}, metav1.CreateOptions{})
				return err
			},
			"PodTemplate": func() error {
				_, err := c.cs.CoreV1().PodTemplates(ns).Create(ctx, &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Template: bad}, metav1.CreateOptions{})
				return err
			},
		}
		for kind, create := range objs {
			err := create()
			if err == nil {
				t.Errorf("%s with a privileged container was admitted", kind)
				continue
			}
			got := causes(t, err)
			if !slices.ContainsFunc(got, func(f string) bool { return strings.HasSuffix(f, "containers[0].securityContext.privileged") }) {
				t.Errorf("%s: causes %v lack the privileged field", kind, got)
			}
		}
	})

	t.Run("fixable workloads of every kind are admitted with warnings", func(t *testing.T) {
		cs, wc := c.withWarnings()
		labels := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ok"}}
		good := tmpl("ok")
		job := good
		job.Spec.RestartPolicy = corev1.RestartPolicyNever
		creates := []func() error{
			func() error {
				_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Spec: appsv1.StatefulSetSpec{Selector: labels, Template: good}}, metav1.CreateOptions{})
				return err
			},
			func() error {
				_, err := cs.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Spec: appsv1.DaemonSetSpec{Selector: labels, Template: good}}, metav1.CreateOptions{})
				return err
			},
			func() error {
				_, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Spec: appsv1.ReplicaSetSpec{Selector: labels, Template: good}}, metav1.CreateOptions{})
				return err
			},
			func() error {
				_, err := cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Spec: batchv1.JobSpec{Template: job}}, metav1.CreateOptions{})
				return err
			},
			func() error {
				_, err := cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: job}}}}, metav1.CreateOptions{})
				return err
			},
			func() error {
				g := good
				_, err := cs.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "ok"}, Template: &g}}, metav1.CreateOptions{})
				return err
			},
			func() error {
				_, err := cs.CoreV1().PodTemplates(ns).Create(ctx, &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Template: good}, metav1.CreateOptions{})
				return err
			},
		}
		for i, create := range creates {
			before := len(wc.All())
			if err := create(); err != nil {
				t.Errorf("object %d: %v", i, err)
				continue
			}
			if ws := wc.All()[before:]; !slices.ContainsFunc(ws, func(w string) bool {
				return strings.HasPrefix(w, "podguard: not in the pod template") && strings.Contains(w, " runAsUser=1000,")
			}) {
				t.Errorf("object %d: no runAsUser warning in %q", i, ws)
			}
		}
	})

	t.Run("updates that leave the template unchanged are allowed", func(t *testing.T) {
		// A non-compliant Deployment from before podguard, in an exempt namespace...
		c.namespace(t, "legacy", nil)
		bad := tmpl("old")
		privileged(&bad.Spec)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "old"}}, Template: bad}}
		if _, err := c.cs.AppsV1().Deployments("legacy").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("exempt namespace: %v", err)
		}
		// ...can still be scaled and labelled by anyone once moved under policy.
		patch := []byte(`{"metadata":{"labels":{"team":"a"}},"spec":{"replicas":3}}`)
		if _, err := c.cs.AppsV1().Deployments("legacy").Patch(ctx, "old", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("label and scale of an unchanged template refused: %v", err)
		}
		// The Pod created earlier can be relabelled although labels say nothing of security.
		if _, err := c.cs.CoreV1().Pods(ns).Patch(ctx, "bare", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{}); err != nil {
			t.Errorf("relabelling a pod: %v", err)
		}
	})

	t.Run("exempt namespaces are left alone", func(t *testing.T) {
		// By the policy's exemption: neither mutated nor denied.
		spec := bareSpec("app")
		privileged(&spec)
		pod, err := c.cs.CoreV1().Pods("legacy").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}, Spec: spec}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("pod in exempt namespace denied: %v", err)
		}
		if pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.RunAsUser != nil {
			t.Error("pod in exempt namespace was mutated")
		}
		if !strings.Contains(c.logs.String(), "legacy workloads, until their migration") {
			t.Error("the exemption and its reason are not logged")
		}
		// By the webhook configuration's namespaceSelector (kube-system, the opt-out label).
		c.namespace(t, "optout", map[string]string{"podguard.dev/ignore": "true"})
		for _, n := range []string{"kube-system", "optout"} {
			pod, err := c.cs.CoreV1().Pods(n).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sys"}, Spec: spec}, metav1.CreateOptions{})
			if err != nil {
				t.Errorf("%s: %v", n, err)
			} else if pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.RunAsGroup != nil {
				t.Errorf("%s: pod was mutated", n)
			}
		}
	})

	t.Run("ephemeral containers are judged and filled in", func(t *testing.T) {
		pod, err := c.cs.CoreV1().Pods(ns).Get(ctx, "bare", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		debug := pod.DeepCopy()
		debug.Spec.EphemeralContainers = append(debug.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "debugger", Image: "busybox:1.36", Stdin: true, TTY: true}})
		got, err := c.cs.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "bare", debug, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("a plain debug container must be admitted once filled in: %v", err)
		}
		ec := got.Spec.EphemeralContainers[0]
		if ec.SecurityContext == nil || ec.SecurityContext.AllowPrivilegeEscalation == nil || *ec.SecurityContext.AllowPrivilegeEscalation ||
			ec.SecurityContext.Capabilities == nil || !slices.Contains(ec.SecurityContext.Capabilities.Drop, "ALL") {
			t.Errorf("ephemeral container not filled in: %+v", ec.SecurityContext)
		}
		bad := got.DeepCopy()
		bad.Spec.EphemeralContainers = append(bad.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "rootshell", Image: "busybox:1.36", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}})
		_, err = c.cs.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "bare", bad, metav1.UpdateOptions{})
		if err == nil {
			t.Fatal("a privileged ephemeral container was admitted")
		}
		if got := causes(t, err); !slices.Contains(got, "spec.ephemeralContainers[1].securityContext.privileged") {
			t.Errorf("causes %v", got)
		}
		// kubectl debug's default "general" profile adds SYS_PTRACE: the
		// denial says which profile to use, and that profile is admitted.
		_, stderr, err := c.kubectlRun(t, "", "debug", "-n", ns, "bare", "--image=busybox:1.36")
		if err == nil || !strings.Contains(stderr, "capabilities.add[0]: ") || !strings.Contains(stderr, "fix: "+rules.KubectlDebugHint+" (podguard rule capabilities)") {
			t.Errorf("kubectl debug with the general profile: %v\n%s", err, stderr)
		}
		if _, stderr, err := c.kubectlRun(t, "", "debug", "-n", ns, "bare", "--image=busybox:1.36", "--profile=restricted"); err != nil {
			t.Errorf("kubectl debug --profile=restricted: %v\n%s", err, stderr)
		}
	})

	t.Run("server dry-run with the real kubectl", func(t *testing.T) {
		// What people see, exactly: testdata/kubectl/<case>.yaml applied with
		// the real kubectl prints testdata/kubectl/<case>.txt (stdout then
		// stderr); -update-kubectl rewrites the .txt files.
		for _, name := range []string{"pod", "deployment", "multi"} {
			in, err := os.ReadFile(filepath.Join("testdata", "kubectl", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, err := c.kubectlRun(t, string(in), "apply", "--dry-run=server", "-f", "-")
			exit := 0
			if err != nil {
				exit = 1
			}
			got := fmt.Sprintf("$ kubectl apply --dry-run=server -f %s.yaml  # exit %d\n%s%s", name, exit, stdout, stderr)
			golden(t, filepath.Join("testdata", "kubectl", name+".txt"), got, *updateKubectl)
		}
		// The same Pod under Pod Security Admission's restricted level, in a
		// namespace podguard ignores, for the README's side-by-side: the
		// API server's own PodSecurity plugin, not a copy of its message.
		c.namespace(t, "psa", map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "podguard.dev/ignore": "true"})
		in, err := os.ReadFile(filepath.Join("testdata", "kubectl", "pod.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := c.kubectlRun(t, strings.Replace(string(in), "namespace: apps", "namespace: psa", 1), "apply", "--dry-run=server", "-f", "-")
		if err == nil {
			t.Fatal("Pod Security Admission admitted the privileged pod")
		}
		golden(t, filepath.Join("testdata", "kubectl", "pod-psa.txt"), "$ kubectl apply --dry-run=server -f pod.yaml  # PSA restricted, exit 1\n"+stdout+stderr, *updateKubectl)
		// The README's side-by-side shows these outputs as they are.
		readme, err := os.ReadFile(filepath.Join("..", "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"pod", "pod-psa", "deployment"} {
			out, err := os.ReadFile(filepath.Join("testdata", "kubectl", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			if _, body, _ := strings.Cut(string(out), "\n"); !strings.Contains(string(readme), "```\n"+body+"```") {
				t.Errorf("README's \"What kubectl prints\" does not show testdata/kubectl/%s.txt as it is", name)
			}
		}
		for _, obj := range []string{"pod/demo", "deployment/demo"} {
			if _, _, err := c.kubectlRun(t, "", "get", "-n", ns, obj); err == nil {
				t.Errorf("server dry-run persisted %s", obj)
			}
		}
		if !strings.Contains(c.logs.String(), `"dryRun":true`) {
			t.Error("dry-run decisions are not logged as such")
		}
	})

	t.Run("no env value appears in a log line", func(t *testing.T) {
		const secret = "hunter2-must-not-leak"
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "leaky"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "leaky"}}, Template: tmpl("leaky")}}
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", Value: secret}, {Name: "PLAIN", Value: secret + "-plain"}}
		cs, wc := c.withWarnings()
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if !warned(wc.All(), "secretsInEnv") || slices.ContainsFunc(wc.All(), func(w string) bool { return strings.Contains(w, secret) }) {
			t.Errorf("no secretsInEnv warning (or it shows the value): %q", wc.All())
		}
		if strings.Contains(c.logs.String(), secret) {
			t.Error("an env value appears in the logs")
		}
	})

	t.Run("one JSON log line per decision", func(t *testing.T) {
		found := false
		for _, line := range strings.Split(c.logs.String(), "\n") {
			if !strings.Contains(line, "admission decision") {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line is not JSON: %s", line)
			}
			for _, k := range []string{"uid", "kind", "namespace", "name", "decision", "operation"} {
				if _, ok := m[k]; !ok {
					t.Errorf("decision line lacks %s: %s", k, line)
				}
			}
			if m["decision"] == "denied" {
				found = true
			}
		}
		if !found {
			t.Error("no denial was logged")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		body := httpGet(t, "http://"+c.opts.MetricsBindAddress+"/metrics")
		for _, want := range []string{
			`podguard_decisions_total{action="enforce",endpoint="validate",kind="Pod",operation="CREATE",result="denied",rule="privileged"}`,
			`podguard_decisions_total{action="mutate",endpoint="mutate",kind="Pod",operation="CREATE",result="injected",rule="runAsUser"}`,
			`podguard_request_duration_seconds_bucket{endpoint="mutate",kind="Pod"`,
			`podguard_policy_reloads_total{result="success"}`,
			`podguard_certificate_expiry_timestamp_seconds `,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("policy hot reload", func(t *testing.T) {
		spec := bareSpec("app")
		spec.HostPID = true
		create := func(name string) ([]string, error) {
			cs, wc := c.withWarnings()
			_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return wc.All(), err
		}
		if _, err := create("hostpid"); err == nil {
			t.Fatal("hostPID admitted under the enforce policy")
		}
		write(t, c.opts.PolicyFile, "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: warn\n")
		waitFor(t, 20*time.Second, "the warn-mode policy to take effect", func() bool {
			ws, err := create("hostpid")
			return err == nil && warned(ws, "hostNamespaces")
		})
		failures := metricValue(t, c, `podguard_policy_reloads_total{result="failure"}`)
		write(t, c.opts.PolicyFile, "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nmode: warn\nrules:\n  noSuchRule: {}\n")
		waitFor(t, 20*time.Second, "the broken policy to be refused", func() bool {
			return metricValue(t, c, `podguard_policy_reloads_total{result="failure"}`) > failures
		})
		if !strings.Contains(c.logs.String(), "policy rejected; the last good policy keeps serving") || !strings.Contains(c.logs.String(), "noSuchRule") {
			t.Error("the refused policy is not logged clearly")
		}
		if ws, err := create("hostpid"); err != nil || len(ws) == 0 {
			t.Errorf("the last good (warn) policy must keep serving: %v %q", err, ws)
		}
		write(t, c.opts.PolicyFile, "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nexemptions: []\n")
		waitFor(t, 20*time.Second, "the enforce policy to come back", func() bool {
			_, err := create("hostpid")
			return err != nil
		})
	})

	t.Run("certificate rotation keeps the webhook answering", func(t *testing.T) {
		before := servedCert(t, c.opts.Host, c.opts.Port)
		stop := make(chan struct{})
		errs := make(chan error, 1000)
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					close(errs)
					return
				default:
				}
				_, err := c.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rot-%d", i)}, Spec: bareSpec("app")},
					metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				errs <- err
			}
		}()
		if err := c.ca.Issue(c.opts.CertDir); err != nil {
			t.Fatal(err)
		}
		var after string
		waitFor(t, 30*time.Second, "the new certificate to be served", func() bool {
			after = servedCert(t, c.opts.Host, c.opts.Port)
			return after != before
		})
		time.Sleep(time.Second)
		close(stop)
		n := 0
		for err := range errs {
			n++
			if err != nil {
				t.Errorf("request failed during rotation: %v", err)
			}
		}
		if n < 5 {
			t.Errorf("only %d requests during the rotation (%s -> %s)", n, before, after)
		}
	})
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

var _ = runtime.Object(nil)
var _ kubernetes.Interface = nil
