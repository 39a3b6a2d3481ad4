package audit

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"podguard.dev/podguard/policies"
	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/policies/rules"
)

// EnforcerSource hands out the policy in force; the webhook's policy store
// is one. A new Enforcer (a reloaded policy) re-audits everything.
type EnforcerSource interface {
	Enforcer() *policies.Enforcer
}

// BackgroundOptions configure the background audit.
type BackgroundOptions struct {
	// Interval is how often everything is judged again even if nothing
	// changed (exemptions expire, report CRDs get installed).
	Interval time.Duration
	// Debounce is how long a change waits for others in its namespace
	// before the namespace is judged again (default 1s).
	Debounce time.Duration
	// PolicyPoll is how often the policy in force is compared with the
	// one last audited (default 2s).
	PolicyPoll time.Duration
	// MinRescan is the least time between two judgings of one namespace
	// (default 5s, or ten times the namespace's last judging if longer):
	// under churn (hundreds of pod creates a second) the changes coalesce
	// into one judging, instead of a judging of the whole namespace per
	// second that a replica's memory cannot keep up with.
	MinRescan time.Duration
	// OptOut names the namespaces podguard's webhooks never see: they get
	// no report, and what runs there is not judged.
	OptOut report.OptOut
	// ImageFacts, when set, asks the registries what the image rules need
	// (report.Input.ImageFacts); serve shares the webhook's verifier and
	// its cache.
	ImageFacts func(*v1alpha1.Policy, *podspec.Target, *policies.Attributes)
}

// Background is the background audit of `podguard serve`, a manager
// Runnable that runs on the elected leader only. It watches the judged
// kinds and NetworkPolicies through its own cache of slim objects
// (rules.Slim: no status, managedFields or unread annotations), judges a
// namespace again when something in it changes (status-only updates do
// not count), everything when the policy changes and every Interval, and
// keeps one report per namespace: openreports.io Report when that CRD is
// served, else wgpolicyk8s.io PolicyReport, else metrics and logs only. A
// report is written only when its content hash changes.
type Background struct {
	cfg     *rest.Config
	source  EnforcerSource
	log     logr.Logger
	metrics *Metrics
	opts    BackgroundOptions

	cache   cache.Cache
	specs   *report.Interner
	dyn     dynamic.Interface
	disc    discovery.DiscoveryInterface
	queue   workqueue.TypedRateLimitingInterface[string]
	synced  chan struct{}
	kind    *report.ObjectKind
	written map[string]written // by namespace
	audited *policies.Enforcer
	// onWrite is called after each report write (tests count them).
	onWrite func(op, namespace string)
	// indexers are the cache's stores by Go type: the audit reads the
	// cached objects in place, never a copy of a whole list.
	indexers map[reflect.Type]toolscache.Indexer
	// scanned holds when each namespace was last judged and how long it
	// took, for MinRescan.
	scannedMu sync.Mutex
	scanned   map[string]scanTime
}

type scanTime struct {
	at   time.Time
	took time.Duration
}

// written is what podguard knows of a report it wrote.
type written struct {
	hash, resourceVersion string
}

// fullScan is the queue item that judges every namespace.
const fullScan = "\x00full-scan"

// NewBackground returns the background audit; add it to a manager.
func NewBackground(cfg *rest.Config, source EnforcerSource, log logr.Logger, m *Metrics, o BackgroundOptions) *Background {
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	if o.PolicyPoll <= 0 {
		o.PolicyPoll = 2 * time.Second
	}
	if o.MinRescan <= 0 {
		o.MinRescan = 5 * time.Second
	}
	cfg = rest.CopyConfig(cfg)
	// A full scan writes up to one report per namespace; client-go's
	// default of 5 requests per second would make that the slow part.
	cfg.QPS, cfg.Burst = 50, 100
	return &Background{cfg: cfg, source: source, log: log, metrics: m, opts: o, synced: make(chan struct{}), written: map[string]written{},
		specs: report.NewInterner(), scanned: map[string]scanTime{}}
}

// NeedLeaderElection: one replica audits and writes reports.
func (b *Background) NeedLeaderElection() bool { return true }

// watched are the objects the cache holds: the judged kinds,
// NetworkPolicies, and Namespaces (their labels: the opt-out).
func watched() []client.Object {
	return []client.Object{&corev1.Pod{}, &corev1.PodTemplate{}, &corev1.ReplicationController{}, &appsv1.Deployment{}, &appsv1.ReplicaSet{},
		&appsv1.StatefulSet{}, &appsv1.DaemonSet{}, &batchv1.Job{}, &batchv1.CronJob{}, &networkingv1.NetworkPolicy{}, &corev1.Namespace{}}
}

// transform keeps what the rules and the audit read: rules.Slim for the
// judged kinds, with the specs of replicas stored once; the pod selector
// for a NetworkPolicy.
func (b *Background) transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion, Labels: o.Labels}}, nil
	case *networkingv1.NetworkPolicy:
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, UID: o.UID, ResourceVersion: o.ResourceVersion},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: o.Spec.PodSelector}}, nil
	case runtime.Object:
		out := compact(rules.Slim(o), b.specs)
		// Typed objects come out of the informers without their kind; the
		// audit reads them in place, so it is set once, here.
		if gvks, _, err := clientgoscheme.Scheme.ObjectKinds(out); err == nil && len(gvks) > 0 {
			out.GetObjectKind().SetGroupVersionKind(gvks[0])
		}
		return out, nil
	}
	return obj, nil
}

// Start runs the audit until ctx ends.
func (b *Background) Start(ctx context.Context) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	var err error
	b.cache, err = cache.New(b.cfg, cache.Options{Scheme: scheme, DefaultTransform: b.transform,
		// The audit only reads: no deep copy of 10,000 Pods per scan.
		DefaultUnsafeDisableDeepCopy: ptr.To(true)})
	if err != nil {
		return err
	}
	if b.dyn, err = dynamic.NewForConfig(b.cfg); err != nil {
		return err
	}
	if b.disc, err = discovery.NewDiscoveryClientForConfig(b.cfg); err != nil {
		return err
	}
	b.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "podguard_audit"})
	defer b.queue.ShutDown()
	b.indexers = map[reflect.Type]toolscache.Indexer{}
	for _, obj := range watched() {
		inf, err := b.cache.GetInformer(ctx, obj)
		if err != nil {
			return err
		}
		sii, ok := inf.(toolscache.SharedIndexInformer)
		if !ok {
			return fmt.Errorf("the cache's informer for %T has no store to read", obj)
		}
		b.indexers[reflect.TypeOf(obj)] = sii.GetIndexer()
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { b.changed(o) },
			UpdateFunc: func(old, o any) { b.updated(old, o) },
			DeleteFunc: func(o any) { b.changed(o) },
		}); err != nil {
			return err
		}
	}
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- b.cache.Start(ctx) }()
	started := time.Now()
	if !b.cache.WaitForCacheSync(ctx) {
		if err := ctx.Err(); err != nil {
			return nil
		}
		return errors.New("the background audit's cache did not sync")
	}
	close(b.synced)
	b.log.Info("background audit: cache synced", "duration", time.Since(started).Round(time.Millisecond).String())
	b.queue.Add(fullScan)
	go b.timers(ctx)
	go func() {
		<-ctx.Done()
		b.queue.ShutDown()
	}()
	for b.next(ctx) {
	}
	if err := <-cacheDone; err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// timers queues a full scan every Interval and when the policy changes.
func (b *Background) timers(ctx context.Context) {
	full := time.NewTicker(b.opts.Interval)
	defer full.Stop()
	poll := time.NewTicker(b.opts.PolicyPoll)
	defer poll.Stop()
	last := b.source.Enforcer()
	for {
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			b.queue.Add(fullScan)
		case <-poll.C:
			if e := b.source.Enforcer(); e != last {
				last = e
				b.log.Info("background audit: the policy changed; judging everything again")
				b.queue.Add(fullScan)
			}
		}
	}
}

// changed queues the namespace of an added or deleted object.
func (b *Background) changed(o any) {
	select {
	case <-b.synced:
	default:
		return // the first full scan covers what the initial lists add
	}
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	if ns, ok := o.(*corev1.Namespace); ok {
		// Its labels changed (opted out or back in): judge what is in it.
		b.queue.AddAfter(ns.Name, b.delay(ns.Name))
		return
	}
	if m, ok := o.(metav1.Object); ok && m.GetNamespace() != "" {
		b.queue.AddAfter(m.GetNamespace(), b.delay(m.GetNamespace()))
	}
}

// delay is how long a change in a namespace waits before the namespace is
// judged again: the debounce, and no sooner than MinRescan (or ten times
// its last judging) after the last one. The queue holds a namespace once,
// so every change until then is covered by that one judging.
func (b *Background) delay(namespace string) time.Duration {
	b.scannedMu.Lock()
	last, ok := b.scanned[namespace]
	b.scannedMu.Unlock()
	d := b.opts.Debounce
	if ok {
		next := last.at.Add(max(b.opts.MinRescan, 10*last.took))
		if wait := time.Until(next); wait > d {
			d = wait
		}
	}
	return d
}

func (b *Background) noteScanned(namespace string, at time.Time) {
	b.scannedMu.Lock()
	b.scanned[namespace] = scanTime{at: at, took: time.Since(at)}
	b.scannedMu.Unlock()
}

// updated queues a namespace when an object changed in what the audit
// reads; a Pod's status changes all the time and does not count.
func (b *Background) updated(old, o any) {
	a, aok := old.(client.Object)
	n, nok := o.(client.Object)
	if aok && nok {
		ac, nc := a.DeepCopyObject().(client.Object), n.DeepCopyObject().(client.Object)
		ac.SetResourceVersion("")
		nc.SetResourceVersion("")
		if reflect.DeepEqual(ac, nc) {
			return
		}
	}
	b.changed(o)
}

// next processes one queue item; false when the queue shut down.
func (b *Background) next(ctx context.Context) bool {
	item, shutdown := b.queue.Get()
	if shutdown {
		return false
	}
	defer b.queue.Done(item)
	var err error
	if item == fullScan {
		err = b.scanAll(ctx)
	} else {
		err = b.scanNamespace(ctx, item)
	}
	switch {
	case err == nil:
		b.queue.Forget(item)
	case ctx.Err() != nil:
	default:
		b.log.Error(err, "background audit: will retry", "namespace", strings.TrimPrefix(item, "\x00"))
		b.queue.AddRateLimited(item)
	}
	return true
}

// input returns the cached objects of a namespace ("" for all), read in
// place from the informers' stores: pointers to the cache's own slim
// objects, no list of copies.
func (b *Background) input(namespace string) (report.Input, error) {
	in := report.Input{OptedOut: map[string]string{}, ImageFacts: b.opts.ImageFacts}
	for _, obj := range watched() {
		items, err := b.cached(obj, namespace)
		if err != nil {
			return in, err
		}
		for _, it := range items {
			switch o := it.(type) {
			case *corev1.Namespace:
				if why := b.opts.OptOut.Reason(o.Name, o.Labels); why != "" {
					in.OptedOut[o.Name] = why
				}
			case *networkingv1.NetworkPolicy:
				in.NetworkPolicies = append(in.NetworkPolicies, *o)
			case runtime.Object:
				in.Objects = append(in.Objects, o)
			}
		}
	}
	return in, nil
}

// cached lists one kind's store, for a namespace or all of them.
func (b *Background) cached(obj client.Object, namespace string) ([]any, error) {
	idx := b.indexers[reflect.TypeOf(obj)]
	if idx == nil {
		return nil, fmt.Errorf("no store for %T", obj)
	}
	if namespace == "" {
		return idx.List(), nil
	}
	if _, ok := obj.(*corev1.Namespace); ok {
		// Cluster-scoped: the namespace itself, by its key.
		it, exists, err := idx.GetByKey(namespace)
		if err != nil || !exists {
			return nil, err
		}
		return []any{it}, nil
	}
	items, err := idx.ByIndex(toolscache.NamespaceIndex, namespace)
	if err == nil {
		return items, nil
	}
	// A store without the namespace index: filter.
	var out []any
	for _, it := range idx.List() {
		if m, ok := it.(metav1.Object); ok && m.GetNamespace() == namespace {
			out = append(out, it)
		}
	}
	return out, nil
}

// scanAll judges every namespace, deletes the reports of namespaces with
// nothing left to judge, and records the scan's duration and time.
func (b *Background) scanAll(ctx context.Context) error {
	started := time.Now()
	b.detectKind(ctx)
	if err := b.loadWritten(ctx); err != nil {
		return err
	}
	in, err := b.input("")
	if err != nil {
		return err
	}
	e := b.source.Enforcer()
	b.audited = e
	in.Now = time.Now()
	r := report.Build(e, in)
	var pods []*corev1.Pod
	for _, o := range in.Objects {
		if p, ok := o.(*corev1.Pod); ok {
			pods = append(pods, p)
		}
	}
	b.specs.Retain(pods)
	in, pods = report.Input{}, nil // the objects are the cache's; let the slices go
	seen := map[string]bool{}
	var errs []error
	for i := range r.Namespaces {
		ns := &r.Namespaces[i]
		seen[ns.Name] = true
		if err := b.publish(ctx, ns, r.Generated); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range b.metrics.namespaces() {
		if !seen[ns] {
			b.metrics.forget(ns)
		}
	}
	for ns := range b.written {
		if !seen[ns] {
			if err := b.remove(ctx, ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	took := time.Since(started)
	b.metrics.ScanDuration.Observe(took.Seconds())
	if len(errs) == 0 {
		b.metrics.LastRun.SetToCurrentTime()
	}
	s, namespaces := r.Summary, len(r.Namespaces)
	// A full scan's garbage (every subject's findings, the report objects)
	// is several times the live heap; without this the process keeps that
	// peak resident until the runtime's scavenger returns it, minutes later.
	// Once per full scan (hourly by default) a forced collection costs tens
	// of milliseconds.
	r = nil
	debug.FreeOSMemory()
	b.log.Info("background audit: scanned the cluster", "duration", took.Round(time.Millisecond).String(), "namespaces", namespaces,
		"subjects", s.Subjects, "fail", s.Fail, "warn", s.Warn, "pass", s.Pass, "skip", s.Skip, "pods", s.Pods, "reportKind", b.kindName())
	return errors.Join(errs...)
}

// scanNamespace judges one namespace after a change in it.
func (b *Background) scanNamespace(ctx context.Context, namespace string) error {
	started := time.Now()
	defer b.noteScanned(namespace, started)
	in, err := b.input(namespace)
	if err != nil {
		return err
	}
	in.Now = time.Now()
	r := report.Build(b.source.Enforcer(), in)
	if len(r.Namespaces) == 0 {
		b.metrics.forget(namespace)
		return b.remove(ctx, namespace)
	}
	return b.publish(ctx, &r.Namespaces[0], r.Generated)
}

// publish updates a namespace's metrics and writes its report if its
// content changed.
func (b *Background) publish(ctx context.Context, ns *report.Namespace, now time.Time) error {
	b.metrics.set(ns)
	if b.kind == nil {
		return nil
	}
	obj, hash := ns.Object(*b.kind, now)
	known, ok := b.written[ns.Name]
	if ok && known.hash == hash {
		return nil
	}
	rc := b.dyn.Resource(b.resource()).Namespace(ns.Name)
	u := &unstructured.Unstructured{Object: obj}
	var out *unstructured.Unstructured
	var err error
	if ok {
		// One request: the resource version is the one podguard last wrote
		// or listed; a conflict (someone else wrote it) is retried after a
		// fresh read.
		u.SetResourceVersion(known.resourceVersion)
		out, err = rc.Update(ctx, u, metav1.UpdateOptions{FieldManager: "podguard"})
		b.wrote("update", ns.Name, err)
	} else {
		out, err = rc.Create(ctx, u, metav1.CreateOptions{FieldManager: "podguard"})
		b.wrote("create", ns.Name, err)
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || (ok && apierrors.IsNotFound(err)) {
		delete(b.written, ns.Name)
		if existing, gerr := rc.Get(ctx, report.ObjectName, metav1.GetOptions{}); gerr == nil {
			b.written[ns.Name] = written{existing.GetAnnotations()[report.HashAnnotation], existing.GetResourceVersion()}
		}
		return fmt.Errorf("the %s of namespace %s changed under podguard; writing it again: %w", b.kind.Kind, ns.Name, err)
	}
	if terminating(err) {
		// The namespace is going away, and its report with it.
		delete(b.written, ns.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing the %s of namespace %s: %w", b.kind.Kind, ns.Name, err)
	}
	b.written[ns.Name] = written{hash, out.GetResourceVersion()}
	return nil
}

// remove deletes the report of a namespace with nothing left to judge.
func (b *Background) remove(ctx context.Context, namespace string) error {
	if b.kind == nil {
		delete(b.written, namespace)
		return nil
	}
	if _, ok := b.written[namespace]; !ok {
		return nil
	}
	err := b.dyn.Resource(b.resource()).Namespace(namespace).Delete(ctx, report.ObjectName, metav1.DeleteOptions{})
	if !apierrors.IsNotFound(err) {
		b.wrote("delete", namespace, err)
	}
	if err != nil && !apierrors.IsNotFound(err) && !terminating(err) {
		return fmt.Errorf("deleting the %s of namespace %s: %w", b.kind.Kind, namespace, err)
	}
	delete(b.written, namespace)
	return nil
}

func terminating(err error) bool {
	return err != nil && (apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) ||
		(apierrors.IsNotFound(err) && strings.Contains(err.Error(), "namespaces")))
}

func (b *Background) wrote(op, namespace string, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	b.metrics.ReportWrites.WithLabelValues(b.kind.Kind, op, result).Inc()
	if err == nil {
		b.log.V(1).Info("background audit: report written", "operation", op, "namespace", namespace, "kind", b.kind.Kind)
		if b.onWrite != nil {
			b.onWrite(op, namespace)
		}
	}
}

func (b *Background) resource() schema.GroupVersionResource {
	gv, _ := schema.ParseGroupVersion(b.kind.APIVersion)
	return gv.WithResource(b.kind.Resource)
}

func (b *Background) kindName() string {
	if b.kind == nil {
		return "none"
	}
	return b.kind.APIVersion + " " + b.kind.Kind
}

// detectKind finds the report kind the API server serves, in order of
// preference; none means metrics and logs only.
func (b *Background) detectKind(ctx context.Context) {
	var found *report.ObjectKind
	for _, k := range []report.ObjectKind{report.OpenReports, report.PolicyReport} {
		rl, err := b.disc.ServerResourcesForGroupVersion(k.APIVersion)
		if err != nil {
			continue
		}
		for _, r := range rl.APIResources {
			if r.Name == k.Resource {
				found = &k
				break
			}
		}
		if found != nil {
			break
		}
	}
	if !reflect.DeepEqual(found, b.kind) {
		if found == nil {
			b.log.Info("background audit: no report CRD is installed (openreports.io Report or wgpolicyk8s.io PolicyReport); results go to metrics and logs only")
		} else {
			b.log.Info("background audit: writing reports", "apiVersion", found.APIVersion, "kind", found.Kind)
		}
		b.kind = found
		b.written = map[string]written{}
		b.metrics.setKind(b.kindName())
	}
	_ = ctx
}

// loadWritten reads the reports podguard wrote before (a restart, another
// leader), so unchanged ones are not written again and stale ones are
// deleted.
func (b *Background) loadWritten(ctx context.Context) error {
	if b.kind == nil {
		return nil
	}
	found := map[string]written{}
	cont := ""
	for {
		l, err := b.dyn.Resource(b.resource()).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=podguard", Limit: 500, Continue: cont})
		if err != nil {
			return fmt.Errorf("listing %s reports: %w", b.kind.Kind, err)
		}
		for _, it := range l.Items {
			if it.GetName() == report.ObjectName {
				found[it.GetNamespace()] = written{it.GetAnnotations()[report.HashAnnotation], it.GetResourceVersion()}
			}
		}
		if cont = l.GetContinue(); cont == "" {
			break
		}
	}
	b.written = found
	return nil
}
