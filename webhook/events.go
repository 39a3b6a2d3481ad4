package webhook

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"podguard.dev/podguard/policies/safetext"
)

// Event reasons: what `kubectl describe` and `kubectl events` show.
const (
	// ReasonDenied is a denial's Event (type Warning).
	ReasonDenied = "PodguardDenied"
	// ReasonInjected is the Event of what mutation injected into a Pod
	// (type Normal).
	ReasonInjected = "PodguardInjected"
)

const (
	// maxEventNote is below events.k8s.io/v1's 1 KiB limit on a note.
	maxEventNote = 1000
	// eventDedupWindow: the same reason on the same object is emitted once
	// per window (a controller retrying a denied Pod every few seconds
	// makes one Event a minute, not hundreds).
	eventDedupWindow = time.Minute
	// maxEventKeys bounds the dedup memory.
	maxEventKeys = 10000
)

// EventRecorder is the part of controller-runtime's events.k8s.io/v1
// recorder the webhook uses.
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Events emits Kubernetes Events for decisions: every denial, on the object
// when it exists (an UPDATE) or on its namespace when it does not yet (a
// CREATE, as Gatekeeper does), and every injection into a Pod, on the
// Pod's controller (the ReplicaSet, Job... whose events describe shows next
// to "Created pod") or on the Pod itself by name. Never for dry-run
// requests (the webhooks declare sideEffects: NoneOnDryRun). Notes name
// rules, field paths and injected policy values, never an object's values
// (no env value can reach one). Emission is bounded: a token bucket across
// all Events, and one Event per object and reason per minute.
type Events struct {
	rec     EventRecorder
	limiter flowcontrol.RateLimiter

	mu   sync.Mutex
	seen map[string]time.Time
	now  func() time.Time
}

// NewEvents returns an emitter through rec, at most qps Events a second
// with bursts of burst.
func NewEvents(rec EventRecorder, qps float32, burst int) *Events {
	return &Events{rec: rec, limiter: flowcontrol.NewTokenBucketRateLimiter(qps, burst), seen: map[string]time.Time{}, now: time.Now}
}

// emit records the Event of one decision, if it calls for one.
func (e *Events) emit(req admission.Request, d decision, mutating bool) {
	if e == nil || (req.DryRun != nil && *req.DryRun) || d.meta == nil {
		return
	}
	switch {
	case !mutating && d.result == "denied" && d.res != nil:
		regarding := deniedRegarding(req, d.meta)
		var parts []string
		for _, v := range d.res.Violations {
			p := v.Rule + " at " + v.Field
			if !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
		n := len(d.res.Violations)
		for _, k := range d.res.Omitted.Violations {
			n += k
		}
		note := fmt.Sprintf("podguard denied %s of %s %s: %d %s: %s", req.Operation, req.Kind.Kind, objectName(req, d.meta), n,
			safetext.Plural(n, "violation", "violations"), strings.Join(parts, "; "))
		e.record(regarding, corev1.EventTypeWarning, ReasonDenied, "Admit", note)
	case mutating && d.result == "mutated" && req.Kind.Kind == "Pod" && req.Kind.Group == "":
		var items []string
		for _, c := range d.changes {
			if it := shortChange(c); it != "" && !slices.Contains(items, it) {
				items = append(items, it)
			}
		}
		if len(items) == 0 {
			return
		}
		regarding := &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: req.Namespace, Name: d.meta.GetName(), UID: d.meta.GetUID()}
		if ref := metav1.GetControllerOfNoCopy(d.meta); ref != nil {
			regarding = &corev1.ObjectReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: req.Namespace, Name: ref.Name, UID: ref.UID}
		} else if regarding.Name == "" {
			regarding = namespaceRef(req.Namespace)
		}
		note := fmt.Sprintf("podguard injected into pod %s: %s", objectName(req, d.meta), strings.Join(items, ", "))
		e.record(regarding, corev1.EventTypeNormal, ReasonInjected, "Mutate", note)
	}
}

// deniedRegarding is the object a denial's Event is about: the object
// itself when it exists already (an UPDATE carries its UID), else its
// namespace.
func deniedRegarding(req admission.Request, meta metav1.Object) *corev1.ObjectReference {
	if req.Operation == admissionv1.Update && req.Name != "" {
		gv := schema.GroupVersion{Group: req.Kind.Group, Version: req.Kind.Version}
		return &corev1.ObjectReference{APIVersion: gv.String(), Kind: req.Kind.Kind, Namespace: req.Namespace, Name: req.Name, UID: meta.GetUID()}
	}
	return namespaceRef(req.Namespace)
}

func (e *Events) record(regarding *corev1.ObjectReference, eventtype, reason, action, note string) {
	key := reason + "/" + regarding.Kind + "/" + regarding.Namespace + "/" + regarding.Name + "/" + note
	now := e.now()
	e.mu.Lock()
	if last, ok := e.seen[key]; ok && now.Sub(last) < eventDedupWindow {
		e.mu.Unlock()
		return
	}
	if len(e.seen) >= maxEventKeys {
		for k, t := range e.seen {
			if now.Sub(t) >= eventDedupWindow {
				delete(e.seen, k)
			}
		}
		if len(e.seen) >= maxEventKeys {
			e.mu.Unlock()
			return // a flood of distinct objects: drop rather than grow
		}
	}
	e.seen[key] = now
	e.mu.Unlock()
	if !e.limiter.TryAccept() {
		return
	}
	// %s with the note as its argument: the note is never a format string.
	e.rec.Eventf(regarding, nil, eventtype, reason, action, "%s", truncate(safetext.Line(note), maxEventNote))
}

func namespaceRef(ns string) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: ns}
}

func objectName(req admission.Request, meta metav1.Object) string {
	switch {
	case meta.GetName() != "":
		return truncate(meta.GetName(), maxLogValue)
	case req.Name != "":
		return truncate(req.Name, maxLogValue)
	case meta.GetGenerateName() != "":
		return truncate(meta.GetGenerateName(), maxLogValue) + "*"
	}
	return "(unnamed)"
}
