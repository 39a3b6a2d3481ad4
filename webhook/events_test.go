package webhook

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"podguard.dev/podguard/hack/testenv"
)

// fakeRecorder keeps the Events it is given (a recorder of our own
// interface; the RBAC test records real ones on a real API server).
type fakeRecorder struct {
	mu     sync.Mutex
	events []recorded
}

type recorded struct {
	regarding         *corev1.ObjectReference
	eventtype, reason string
	action, note      string
}

func (f *fakeRecorder) Eventf(regarding, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, recorded{regarding.(*corev1.ObjectReference), eventtype, reason, action, fmt.Sprintf(note, args...)})
}

func (f *fakeRecorder) all() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.events...)
}

const rootPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"apps"},"spec":{"containers":[{"name":"c","image":"c:1","securityContext":{"runAsUser":0}}]}}`

func TestEventsOnDenialsAndInjections(t *testing.T) {
	t.Run("a denied CREATE is an Event on the namespace, once a minute", func(t *testing.T) {
		rec := &fakeRecorder{}
		e := newTestEndpoint(t, "", false)
		e.rh.handler.Events = NewEvents(rec, 100, 100)
		for i := 0; i < 5; i++ {
			e.post(t, review(fmt.Sprint(i), "Pod", "", rootPod))
		}
		evs := rec.all()
		if len(evs) != 1 {
			t.Fatalf("%d Events for 5 identical denials: %+v", len(evs), evs)
		}
		ev := evs[0]
		if ev.regarding.Kind != "Namespace" || ev.regarding.Name != "apps" || ev.eventtype != corev1.EventTypeWarning || ev.reason != ReasonDenied ||
			!strings.Contains(ev.note, "podguard denied CREATE of Pod p") || !strings.Contains(ev.note, "runAsUser at spec.containers[0].securityContext.runAsUser") {
			t.Errorf("Event %+v", ev)
		}
	})
	t.Run("a denied UPDATE is an Event on the object", func(t *testing.T) {
		rec := &fakeRecorder{}
		e := newTestEndpoint(t, "", false)
		e.rh.handler.Events = NewEvents(rec, 100, 100)
		// As the API server sends an UPDATE: the object carries its UID.
		stored := strings.Replace(rootPod, `"name":"p",`, `"name":"p","uid":"1234",`, 1)
		body := strings.Replace(review("u", "Pod", "", stored), `"operation":"CREATE"`, `"operation":"UPDATE","name":"p","oldObject":{"metadata":{"name":"p","uid":"1234"}}`, 1)
		e.post(t, body)
		evs := rec.all()
		if len(evs) != 1 || evs[0].regarding.Kind != "Pod" || evs[0].regarding.Name != "p" || evs[0].regarding.UID != "1234" {
			t.Errorf("Events %+v", evs)
		}
	})
	t.Run("dry runs make no Event", func(t *testing.T) {
		rec := &fakeRecorder{}
		for _, mutating := range []bool{false, true} {
			e := newTestEndpoint(t, "", mutating)
			e.rh.handler.Events = NewEvents(rec, 100, 100)
			e.post(t, strings.Replace(review("u", "Pod", "", rootPod), `"uid":"u"`, `"uid":"u","dryRun":true`, 1))
		}
		if evs := rec.all(); len(evs) != 0 {
			t.Errorf("dry runs recorded %+v", evs)
		}
	})
	t.Run("an injection is an Event on the Pod's controller", func(t *testing.T) {
		rec := &fakeRecorder{}
		e := newTestEndpoint(t, "", true)
		e.rh.handler.Events = NewEvents(rec, 100, 100)
		owned := `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-5d8f-","namespace":"apps","ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-5d8f","uid":"rs-uid","controller":true}]},"spec":{"containers":[{"name":"c","image":"c:1"}]}}`
		e.post(t, review("u", "Pod", "", owned))
		evs := rec.all()
		if len(evs) != 1 || evs[0].regarding.Kind != "ReplicaSet" || evs[0].regarding.Name != "web-5d8f" || evs[0].regarding.UID != "rs-uid" ||
			evs[0].eventtype != corev1.EventTypeNormal || evs[0].reason != ReasonInjected || !strings.Contains(evs[0].note, "podguard injected into pod web-5d8f-*: ") ||
			!strings.Contains(evs[0].note, "runAsUser=1000") {
			t.Errorf("Events %+v", evs)
		}
	})
	t.Run("the rate is bounded across objects", func(t *testing.T) {
		rec := &fakeRecorder{}
		e := newTestEndpoint(t, "", false)
		e.rh.handler.Events = NewEvents(rec, 0.001, 3)
		for i := 0; i < 10; i++ {
			e.post(t, review("u", "Pod", "", strings.Replace(rootPod, `"name":"p"`, fmt.Sprintf(`"name":"p%d"`, i), 1)))
		}
		if n := len(rec.all()); n != 3 {
			t.Errorf("%d Events through a bucket of 3", n)
		}
	})
	t.Run("the dedup memory is bounded", func(t *testing.T) {
		ev := NewEvents(&fakeRecorder{}, 1e6, 1e6)
		now := time.Now()
		ev.now = func() time.Time { return now }
		for i := 0; i < maxEventKeys+50; i++ {
			ev.record(namespaceRef(fmt.Sprint(i)), corev1.EventTypeWarning, ReasonDenied, "Admit", "n")
		}
		if len(ev.seen) > maxEventKeys {
			t.Errorf("%d keys remembered", len(ev.seen))
		}
	})
	t.Run("no env value in a note", func(t *testing.T) {
		rec := &fakeRecorder{}
		e := newTestEndpoint(t, "", false)
		e.rh.handler.Events = NewEvents(rec, 100, 100)
		pod, err := testenv.CanaryPod()
		if err != nil {
			t.Fatal(err)
		}
		// Privileged as well, so the canary pod is denied.
		pod = []byte(strings.Replace(string(pod), `"spec":{`, `"spec":{"hostPID":true,`, 1))
		e.post(t, review("u", "Pod", "", string(pod)))
		evs := rec.all()
		if len(evs) != 1 {
			t.Fatalf("Events %+v", evs)
		}
		if strings.Contains(evs[0].note, testenv.CanaryMarker) {
			t.Errorf("a secret in an Event: %s", evs[0].note)
		}
	})
}

// TestImageDigestOnEphemeralContainers: a debug container added through
// pods/ephemeralcontainers is an image the pod runs: with imageDigest on,
// one by tag is refused, one by digest admitted.
func TestImageDigestOnEphemeralContainers(t *testing.T) {
	const policy = "apiVersion: podguard.dev/v1alpha1\nkind: Policy\nrules:\n  imageDigest: {action: enforce}\n"
	const digest = "@sha256:0d5e4e1c5b6f2a1c8e1f9d3c7b2a6e4f1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a"
	old := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"apps"},"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":1000,"runAsGroup":1000,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"c","image":"registry.example/c:1` + digest + `"}]}}`
	withDebug := func(image string) string {
		return strings.Replace(old, `}]}}`, `}],"ephemeralContainers":[{"name":"debugger","image":"`+image+`","securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}}}]}}`, 1)
	}
	for image, allowed := range map[string]bool{"busybox:1.36": false, "busybox:1.36" + digest: true} {
		e := newTestEndpoint(t, policy, false)
		body := review("u", "Pod", "", withDebug(image))
		body = strings.Replace(body, `"operation":"CREATE"`, `"operation":"UPDATE","subResource":"ephemeralcontainers","name":"p"`, 1)
		body = strings.TrimSuffix(body, "}}") + `,"oldObject":` + old + `}}`
		_, raw, ar := e.post(t, body)
		if ar.Response == nil || ar.Response.Allowed != allowed {
			t.Errorf("debug image %s: want allowed=%v: %s", image, allowed, raw)
			continue
		}
		if !allowed && !strings.Contains(string(raw), "spec.ephemeralContainers[0].image") {
			t.Errorf("debug image %s: the denial does not name the field: %s", image, raw)
		}
	}
}
