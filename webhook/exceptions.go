package webhook

import (
	"context"
	"maps"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
)

// ExceptionsResource is where PodGuardExceptions are served.
var ExceptionsResource = schema.GroupVersionResource{Group: v1alpha1.GroupName, Version: v1alpha1.Version, Resource: "podguardexceptions"}

// ExceptionWatcher keeps the policy store's PodGuardExceptions current: it
// watches them cluster-wide (once their CRD is served; until then it looks
// again every CRDPoll) and hands the store every change, coalesced.
type ExceptionWatcher struct {
	cfg   *rest.Config
	store *PolicyStore
	log   logr.Logger
	// CRDPoll is how often a missing CRD is looked for (default 30s).
	CRDPoll time.Duration
	// Settle is how long changes coalesce before the store rebuilds
	// (default 200ms).
	Settle time.Duration
	// Refresh republishes the exceptions this often, so states and metrics
	// follow expiries (default 1m).
	Refresh time.Duration
}

// NewExceptionWatcher returns the watcher; add it to a manager.
func NewExceptionWatcher(cfg *rest.Config, store *PolicyStore, log logr.Logger) *ExceptionWatcher {
	return &ExceptionWatcher{cfg: cfg, store: store, log: log, CRDPoll: 30 * time.Second, Settle: 200 * time.Millisecond, Refresh: time.Minute}
}

// NeedLeaderElection: every replica admits, so every replica watches.
func (w *ExceptionWatcher) NeedLeaderElection() bool { return false }

// Start watches until ctx ends.
func (w *ExceptionWatcher) Start(ctx context.Context) error {
	disc, err := discovery.NewDiscoveryClientForConfig(w.cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(w.cfg)
	if err != nil {
		return err
	}
	for said := false; !served(disc); said = true {
		if !said {
			w.log.Info("the PodGuardException CRD is not served: no exceptions apply until it is installed", "poll", w.CRDPoll.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.CRDPoll):
		}
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 10*time.Minute)
	inf := factory.ForResource(ExceptionsResource).Informer()
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil
	}
	w.log.Info("watching PodGuardExceptions")
	// Expiry needs no rebuild (requests compare it with their own time),
	// but states and metrics do: the next expiry triggers a republish.
	next := time.NewTimer(w.Refresh)
	defer next.Stop()
	warned := map[string]bool{}
	publish := func() {
		xs := decodeExceptions(inf.GetStore().List(), warned, w.log)
		w.store.SetExceptions(xs)
		wait := w.Refresh
		now := time.Now()
		for _, st := range w.store.Enforcer().Exceptions() {
			if st.State == policies.ExceptionActive && st.Until.Sub(now) < wait {
				wait = max(st.Until.Sub(now)+50*time.Millisecond, 0)
			}
		}
		next.Reset(wait)
	}
	publish()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			time.Sleep(w.Settle)
			publish()
		case <-next.C:
			publish()
		}
	}
}

// served reports whether the API server serves PodGuardExceptions.
func served(disc discovery.DiscoveryInterface) bool {
	rl, err := disc.ServerResourcesForGroupVersion(ExceptionsResource.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range rl.APIResources {
		if r.Name == ExceptionsResource.Resource {
			return true
		}
	}
	return false
}

// decodeExceptions converts the informer's objects; one that does not
// decode (a schema older than this podguard) is skipped, with a log line
// the first time (warned remembers the versions logged, and forgets those
// no longer in the cache).
func decodeExceptions(items []any, warned map[string]bool, log logr.Logger) []v1alpha1.PodGuardException {
	current := map[string]bool{}
	out := make([]v1alpha1.PodGuardException, 0, len(items))
	for _, it := range items {
		u, ok := it.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		var x v1alpha1.PodGuardException
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &x); err != nil {
			key := u.GetNamespace() + "/" + u.GetName() + "@" + u.GetResourceVersion()
			current[key] = true
			if !warned[key] {
				log.Error(err, "a PodGuardException cannot be decoded; it does not apply", "namespace", u.GetNamespace(), "name", u.GetName())
			}
			continue
		}
		out = append(out, x)
	}
	clear(warned)
	maps.Copy(warned, current)
	return out
}
