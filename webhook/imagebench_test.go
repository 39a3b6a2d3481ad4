package webhook_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"podguard.dev/podguard/hack/testenv"
	"podguard.dev/podguard/hack/testenv/sigtest"
	"podguard.dev/podguard/policies/rules"
	"podguard.dev/podguard/webhook"
)

// BenchmarkPodCreateImages measures pod creation through a real
// kube-apiserver and podguard's two webhooks, with imageSignatures
// verifying each image against an in-process registry over TLS on the
// loopback, for pods of 1, 10 and 100 distinct images:
//
//   - off: the same webhooks and policy, images no trust entry covers (no
//     registry is asked);
//   - cold: images never seen, each create verifies every one (fresh
//     digests, signed, pushed beforehand with the timer stopped);
//   - warm: the same signed images each time, every verdict from the cache;
//   - no admission: the webhook configurations removed (last).
//
// Each op is one create of a pod (client-go, real, not dry-run); p50-ms
// and p99-ms are over the ops of the run. The API server, etcd, podguard,
// the registry and the client share the machine's cores.
//
//	KUBEBUILDER_ASSETS=$(hack/tools.sh assets-dir) go test -run '^$' -bench '^BenchmarkPodCreateImages$' -benchtime 20x ./webhook/
func BenchmarkPodCreateImages(b *testing.B) {
	reg := testenv.StartRegistry(b)
	key := sigtest.NewSigner(b)
	ps := rules.ImageSignaturesParams{VerdictCache: rules.VerdictCache{VerdictTTL: "1h"}, Trust: []rules.ImageTrust{{
		Images: []string{reg.Host + "/signed/*"}, Authorities: []rules.Authority{{Name: "release", Key: &rules.KeyAuthority{PEM: key.PEM}}}}}}
	policy, err := yaml.Marshal(map[string]any{"apiVersion": "podguard.dev/v1alpha1", "kind": "Policy", "rules": map[string]any{"imageSignatures": ps},
		"exemptions": []map[string]any{{"reason": "system", "namespaces": []string{"kube-system", "podguard"}}}})
	if err != nil {
		b.Fatal(err)
	}
	c := startCluster(b, clusterConfig{policy: string(policy), mutate: func(o *webhook.Options) { o.RegistryCAFile = reg.CAFile }})
	c.namespace(b, "bench", nil)
	ctx := context.Background()
	seq := 0
	push := func(repo string, n int, sign bool) []string {
		out := make([]string, n)
		for i := range out {
			seq++
			name := fmt.Sprintf("%s/app%d", repo, seq)
			d := reg.PushRandom(b, name+":1")
			if sign {
				sigtest.SignLegacy(b, reg, key, name, d, sigtest.SimpleSigningPayload(reg.Host+"/"+name, d))
			}
			out[i] = reg.Host + "/" + name + ":1@" + d.String()
		}
		return out
	}
	create := func(images []string) error {
		seq++
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", seq)}}
		for i, img := range images {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
		}
		_, err := c.cs.CoreV1().Pods("bench").Create(ctx, p, metav1.CreateOptions{})
		return err
	}
	// run times each create; images(i) gives the i-th op's images.
	run := func(b *testing.B, prepare func(n int) [][]string) {
		sets := prepare(b.N)
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			if err := create(sets[i]); err != nil {
				b.Fatalf("create: %v", err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
		b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)])/1e6, "p99-ms")
	}
	for _, n := range []int{1, 10, 100} {
		plain, warm := push("plain", n, false), push("signed", n, true)
		if err := create(warm); err != nil { // verifies them once
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("images=%d/verification=off", n), func(b *testing.B) {
			run(b, func(k int) [][]string { return slices.Repeat([][]string{plain}, k) })
		})
		b.Run(fmt.Sprintf("images=%d/verification=cold", n), func(b *testing.B) {
			run(b, func(k int) [][]string {
				sets := make([][]string, k)
				for i := range sets {
					sets[i] = push("signed", n, true)
				}
				return sets
			})
		})
		b.Run(fmt.Sprintf("images=%d/verification=warm", n), func(b *testing.B) {
			run(b, func(k int) [][]string { return slices.Repeat([][]string{warm}, k) })
		})
	}
	c.removePodguard(b)
	plain := push("plain", 10, false)
	b.Run("images=10/no-admission", func(b *testing.B) {
		run(b, func(k int) [][]string { return slices.Repeat([][]string{plain}, k) })
	})
	if strings.Contains(c.logs.String(), "panic") {
		b.Error("podguard logged a panic")
	}
}
