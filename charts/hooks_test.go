package charts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"podguard.dev/podguard/hack/testenv"
)

// hookRunner plays the Job controller and the kubelet for the chart's
// policy-check hook, which envtest has neither of (a fake, because those
// parts cannot run here): it runs the Job's container args with the real
// podguard binary, the ConfigMap the Job mounts written where it mounts it
// and the downward-API namespace expanded, and writes the outcome into
// the Job's status the way the Job controller does, which is what Helm
// waits for. What the check decides is the real binary's decision on the
// real rendered policy.
type hookRunner struct {
	mu   sync.Mutex
	logs map[string]string // namespace/name -> combined output
}

func runHookJobs(t *testing.T, env *testenv.Env) *hookRunner {
	t.Helper()
	bin := testenv.PodguardBinary(t)
	h := &hookRunner{logs: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			jobs, err := env.Clientset.BatchV1().Jobs("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=policy-check"})
			if err == nil {
				for i := range jobs.Items {
					h.run(ctx, t, env, bin, &jobs.Items[i])
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return h
}

func (h *hookRunner) run(ctx context.Context, t *testing.T, env *testenv.Env, bin string, job *batchv1.Job) {
	if job.Status.StartTime != nil {
		return
	}
	spec := job.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Errorf("hook Job %s has %d containers", job.Name, len(spec.Containers))
		return
	}
	c := spec.Containers[0]
	dir := t.TempDir()
	args := append([]string{}, c.Args...)
	// Mounts are written under dir at their own paths, so nested ones
	// (the trust sources under /etc/podguard-trust) keep their layout.
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != m.Name || (v.ConfigMap == nil && v.Secret == nil) {
				continue
			}
			data, optional, err := map[string][]byte{}, false, error(nil)
			if v.ConfigMap != nil {
				optional = v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
				var cm *corev1.ConfigMap
				if cm, err = env.Clientset.CoreV1().ConfigMaps(job.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{}); err == nil {
					for k, d := range cm.Data {
						data[k] = []byte(d)
					}
				}
			} else {
				optional = v.Secret.Optional != nil && *v.Secret.Optional
				var sec *corev1.Secret
				if sec, err = env.Clientset.CoreV1().Secrets(job.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{}); err == nil {
					data = sec.Data
				}
			}
			if err != nil && !optional {
				t.Errorf("hook Job %s mounts %s, which does not exist: %v", job.Name, v.Name, err)
				return
			}
			// A missing optional object is an empty directory, as the kubelet makes it.
			local := filepath.Join(dir, m.MountPath)
			if err := os.MkdirAll(local, 0o755); err != nil {
				t.Error(err)
				return
			}
			for k, d := range data {
				if err := os.WriteFile(filepath.Join(local, k), d, 0o644); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}
	for _, m := range c.VolumeMounts {
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], m.MountPath, filepath.Join(dir, m.MountPath))
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "$("+e.Name+")", job.Namespace)
			}
		}
	}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	h.mu.Lock()
	h.logs[job.Namespace+"/"+job.Name] = string(out)
	h.mu.Unlock()

	now := metav1.Now()
	job.Status.StartTime = &now
	cond := func(typ batchv1.JobConditionType, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, LastProbeTime: now, LastTransitionTime: now}
	}
	if err == nil {
		job.Status.Succeeded = 1
		job.Status.CompletionTime = &now
		job.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"), cond(batchv1.JobComplete, "CompletionsReached")}
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobFailureTarget, "BackoffLimitExceeded"), cond(batchv1.JobFailed, "BackoffLimitExceeded")}
	}
	if _, err := env.Clientset.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		t.Errorf("writing hook Job %s's status: %v", job.Name, err)
	}
}

// output returns what the check printed in the Job namespace/name.
func (h *hookRunner) output(key string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs[key]
}
