package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"podguard.dev/podguard/hack/bench/reviews"
	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/policies/api/load"
	"podguard.dev/podguard/policies/native"
)

// e2eResult is one batch of pod creates through the API server.
type e2eResult struct {
	Case        string         `json:"case"`
	Round       int            `json:"round"`
	Concurrency int            `json:"concurrency"`
	DryRun      bool           `json:"dryRun"`
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	Seconds     float64        `json:"seconds"`
	Summary     latencySummary `json:"latency"`
	FirstError  string         `json:"firstError,omitempty"`
}

// The cases, in the report's order.
const (
	caseNone     = "no admission"
	casePodguard = "podguard webhook"
	caseNative   = "podguard native (export)"
	caseBackstop = "backstop (both)"
	caseNoop     = "no-op webhook pair"
)

var cases = []string{caseNone, casePodguard, caseNative, caseBackstop, caseNoop}

func endToEnd(r *results, bins binaries, dir string, quick bool) {
	s := current
	defer s.stop()
	env, err := testenv.Start()
	if err != nil {
		fatal(err)
	}
	defer env.Stop()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 100000, 100000
	cfg.WarningHandler = rest.NoWarnings{}
	cs := kubernetes.NewForConfigOrDie(cfg)
	c := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		fatal(err)
	}
	// The pods name a ServiceAccount, which admission checks exists.
	if _, err := cs.CoreV1().ServiceAccounts("bench").Create(c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{}); err != nil {
		fatal(err)
	}
	n1, n32 := 800, 2000
	if quick {
		n1, n32 = 50, 300
	}
	r.Commands = append(r.Commands, fmt.Sprintf("go run ./hack/bench (end to end: per case and round, %d creates at c=1 and %d at c=32, real and server dry-run; four rounds, the cases in order, then reversed, then in order, then reversed)", n1, n32))
	manifests := filepath.Join("config", "webhook", "manifests.yaml")
	reverse := slices.Clone(cases)
	slices.Reverse(reverse)
	orders := [][]string{cases, reverse, cases, reverse}
	if quick {
		orders = orders[:2]
	}
	seq := 0
	for round, order := range orders {
		for _, cs2 := range order {
			setCase(c, cs, cs2, manifests, s)
			for _, dry := range []bool{true, false} {
				for _, conc := range []int{1, 32} {
					n := n32
					if conc == 1 {
						n = n1
					}
					seq++
					res := creates(c, cs, cs2, round, conc, n, dry, seq)
					step("%-20s round %d c=%-2d dry=%-5v: p50 %.2fms p99 %.2fms %.0f/s errors %d", cs2, round, conc, dry, res.Summary.P50, res.Summary.P99, float64(res.Requests)/res.Seconds, res.Errors)
					r.E2E = append(r.E2E, res)
				}
			}
		}
	}
	setCase(c, cs, caseNone, manifests, s)
}

func creates(c context.Context, cs kubernetes.Interface, name string, round, conc, n int, dry bool, seq int) e2eResult {
	var next, errs atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, conc)
	opts := metav1.CreateOptions{}
	if dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				pod := reviews.Pod(fmt.Sprintf("p-%d-%d", seq, i), true)
				pod.Namespace = "bench"
				t0 := time.Now()
				_, err := cs.CoreV1().Pods("bench").Create(c, pod, opts)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	res := e2eResult{Case: name, Round: round, Concurrency: conc, DryRun: dry, Seconds: time.Since(start).Seconds(), Errors: int(errs.Load())}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	res.Requests = len(all) + res.Errors
	res.Summary = summarize(all)
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
		step("first error: %s", e)
	}
	return res
}

// setCase installs what a case needs and waits until the API server uses it.
func setCase(c context.Context, cs kubernetes.Interface, name, manifests string, s *servers) {
	ar := cs.AdmissionregistrationV1()
	_ = ar.MutatingWebhookConfigurations().Delete(c, "podguard", metav1.DeleteOptions{})
	_ = ar.ValidatingWebhookConfigurations().Delete(c, "podguard", metav1.DeleteOptions{})
	exported := metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=podguard-export"}
	_ = ar.ValidatingAdmissionPolicyBindings().DeleteCollection(c, metav1.DeleteOptions{}, exported)
	_ = ar.ValidatingAdmissionPolicies().DeleteCollection(c, metav1.DeleteOptions{}, exported)
	_ = ar.MutatingAdmissionPolicyBindings().DeleteCollection(c, metav1.DeleteOptions{}, exported)
	_ = ar.MutatingAdmissionPolicies().DeleteCollection(c, metav1.DeleteOptions{}, exported)
	var err error
	switch name {
	case casePodguard:
		err = testenv.InstallWebhooks(c, cs, manifests, s.podguard.base, s.ca.PEM)
	case caseNoop:
		// The same configurations (rules, selectors, timeouts), served by the no-op.
		err = testenv.InstallWebhooks(c, cs, manifests, s.noop.base, s.ca.PEM)
	case caseNative:
		err = installNative(c, cs)
	case caseBackstop:
		if err = installNative(c, cs); err == nil {
			err = installBackstopWebhooks(c, cs, manifests, s.podguard.base, s.ca.PEM)
		}
	}
	if err != nil {
		fatal(err)
	}
	// Wait until the API server's view matches the case.
	bare := reviews.Pod("probe", false)
	bare.Spec.Containers = bare.Spec.Containers[:1]
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		got, err := cs.CoreV1().Pods("bench").Create(c, bare, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		last = err
		// The API server defaults securityContext to {}; podguard sets runAsUser.
		mutated := err == nil && got.Spec.SecurityContext != nil && got.Spec.SecurityContext.RunAsUser != nil
		denied := apierrors.IsInvalid(err) || apierrors.IsForbidden(err)
		ok := false
		switch name {
		case caseNone, caseNoop:
			ok = err == nil && !mutated
		case casePodguard, caseNative, caseBackstop:
			ok = mutated
		}
		_ = denied
		if ok {
			if name == caseNoop {
				time.Sleep(time.Second) // nothing observable tells the no-op is in use
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	fatal(fmt.Errorf("case %q did not take effect (last probe: %v)", name, last))
}

// installNative installs podguard export of the default policy.
func installNative(c context.Context, cs kubernetes.Interface) error {
	e, err := native.Build(load.Default("podguard"), native.Options{ExcludeNamespaces: []string{"kube-system", "podguard"}, OptOutLabel: "podguard.dev/ignore"})
	if err != nil {
		return err
	}
	ar := cs.AdmissionregistrationV1()
	for i := range e.ValidatingPolicies {
		if _, err := ar.ValidatingAdmissionPolicies().Create(c, &e.ValidatingPolicies[i], metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := ar.ValidatingAdmissionPolicyBindings().Create(c, &e.ValidatingBindings[i], metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for i := range e.MutatingPolicies {
		if _, err := ar.MutatingAdmissionPolicies().Create(c, &e.MutatingPolicies[i], metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := ar.MutatingAdmissionPolicyBindings().Create(c, &e.MutatingBindings[i], metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// installBackstopWebhooks installs podguard's webhooks with failurePolicy
// Ignore, as the chart's nativePolicies.backstop does.
func installBackstopWebhooks(c context.Context, cs kubernetes.Interface, manifests, base string, ca []byte) error {
	if err := testenv.InstallWebhooks(c, cs, manifests, base, ca); err != nil {
		return err
	}
	ar := cs.AdmissionregistrationV1()
	m, err := ar.MutatingWebhookConfigurations().Get(c, "podguard", metav1.GetOptions{})
	if err != nil {
		return err
	}
	for i := range m.Webhooks {
		m.Webhooks[i].FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
	}
	if _, err := ar.MutatingWebhookConfigurations().Update(c, m, metav1.UpdateOptions{}); err != nil {
		return err
	}
	v, err := ar.ValidatingWebhookConfigurations().Get(c, "podguard", metav1.GetOptions{})
	if err != nil {
		return err
	}
	for i := range v.Webhooks {
		v.Webhooks[i].FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
	}
	_, err = ar.ValidatingWebhookConfigurations().Update(c, v, metav1.UpdateOptions{})
	return err
}
