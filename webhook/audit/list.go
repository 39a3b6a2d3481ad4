// Package audit lists what runs in a cluster for an audit, and runs the
// background audit of `podguard serve`: it watches the judged kinds through
// a cache of slim objects and keeps one report per namespace current.
package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	sigsjson "sigs.k8s.io/json"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/podspec"
	"podguard.dev/podguard/policies/report"
	"podguard.dev/podguard/policies/rules"
)

// Resource is a resource an audit lists.
type Resource struct {
	GroupVersion schema.GroupVersion
	// Resource is the plural name in URLs; Kind the kind of its items.
	Resource, Kind string
}

// String is the resource as kubectl names it (deployments.apps).
func (r Resource) String() string {
	if r.GroupVersion.Group == "" {
		return r.Resource
	}
	return r.Resource + "." + r.GroupVersion.Group
}

// Judged are the resources of the kinds podguard judges, in the versions
// current API servers serve. An audit needs list on each (and watch for
// the background audit).
var Judged = []Resource{
	{schema.GroupVersion{Version: "v1"}, "pods", "Pod"},
	{schema.GroupVersion{Version: "v1"}, "podtemplates", "PodTemplate"},
	{schema.GroupVersion{Version: "v1"}, "replicationcontrollers", "ReplicationController"},
	{schema.GroupVersion{Group: "apps", Version: "v1"}, "deployments", "Deployment"},
	{schema.GroupVersion{Group: "apps", Version: "v1"}, "replicasets", "ReplicaSet"},
	{schema.GroupVersion{Group: "apps", Version: "v1"}, "statefulsets", "StatefulSet"},
	{schema.GroupVersion{Group: "apps", Version: "v1"}, "daemonsets", "DaemonSet"},
	{schema.GroupVersion{Group: "batch", Version: "v1"}, "jobs", "Job"},
	{schema.GroupVersion{Group: "batch", Version: "v1"}, "cronjobs", "CronJob"},
}

// NetworkPolicies are listed for the network isolation item.
var NetworkPolicies = Resource{schema.GroupVersion{Group: "networking.k8s.io", Version: "v1"}, "networkpolicies", "NetworkPolicy"}

// Listed is every resource an audit lists, in order.
var Listed = append(append([]Resource{}, Judged...), NetworkPolicies)

// ListOptions configure List.
type ListOptions struct {
	// Namespace limits the audit to one namespace; empty means all.
	Namespace string
	// ChunkSize is the page size of every list request (default 500).
	ChunkSize int64
	// AfterList, when set, is called after each resource is listed; tests
	// use it to change the cluster in the middle of an audit.
	AfterList func(Resource)
	// OptOut leaves out the namespaces podguard's webhooks never see.
	OptOut report.OptOut
	// Note, when set, is told what the audit could not do but went on
	// without (namespace labels it may not read).
	Note func(string)
}

// List reads every Pod, pod-bearing workload and NetworkPolicy, page by
// page, decoding each object on its own so that one that cannot be decoded
// becomes a skipped subject with the reason instead of failing the audit;
// objects are slimmed (rules.Slim) as they are decoded and the specs of
// replicas stored once (report.Interner), so memory holds what the rules
// read, not whole objects. Errors say what was refused and
// what to do: an unreachable server, rejected credentials, missing list
// permission (naming the resource), a namespace that does not exist.
func List(ctx context.Context, cfg *rest.Config, o ListOptions) (report.Input, error) {
	var in report.Input
	c, err := rawClient(cfg)
	if err != nil {
		return in, err
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 500
	}
	specs := report.NewInterner()
	for _, res := range Listed {
		nObj, nNP, nSkip := len(in.Objects), len(in.NetworkPolicies), len(in.Skipped)
		restart := func() {
			in.Objects, in.NetworkPolicies, in.Skipped = in.Objects[:nObj], in.NetworkPolicies[:nNP], in.Skipped[:nSkip]
		}
		err := eachItem(ctx, c, res, o, func(raw []byte) {
			if res == NetworkPolicies {
				var np networkingv1.NetworkPolicy
				if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &np); err != nil {
					in.Skipped = append(in.Skipped, undecodable(res, raw, err))
					return
				}
				in.NetworkPolicies = append(in.NetworkPolicies, networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: np.Name, Namespace: np.Namespace}, Spec: np.Spec})
				return
			}
			obj, err := decode(res, raw)
			if err != nil {
				in.Skipped = append(in.Skipped, undecodable(res, raw, err))
				return
			}
			in.Objects = append(in.Objects, compact(rules.Slim(obj), specs))
		}, restart)
		if err != nil {
			return in, explain(err, cfg, res, o.Namespace)
		}
		if o.AfterList != nil {
			o.AfterList(res)
		}
	}
	if o.Namespace != "" && len(in.Objects) == 0 && len(in.Skipped) == 0 {
		// An empty namespace and a mistyped one look alike in lists.
		err := c.Get().AbsPath("/api/v1/namespaces", o.Namespace).Do(ctx).Error()
		if apierrors.IsNotFound(err) {
			return in, fmt.Errorf("namespace %q not found", o.Namespace)
		}
	}
	in.OptedOut = optedOut(ctx, c, &in, o)
	return in, nil
}

// namespaces is what the opt-out label is read from.
var namespaces = Resource{schema.GroupVersion{Version: "v1"}, "namespaces", "Namespace"}

// optedOut finds, among the namespaces the input has objects in, those
// podguard's webhooks never see. Labels need get (one namespace) or list
// (all) on namespaces; without it, names still decide and a note says the
// label could not be read.
func optedOut(ctx context.Context, c *rest.RESTClient, in *report.Input, o ListOptions) map[string]string {
	present := map[string]bool{}
	for _, obj := range in.Objects {
		if m, err := meta.Accessor(obj); err == nil {
			present[m.GetNamespace()] = true
		}
	}
	for _, s := range in.Skipped {
		present[s.Namespace] = true
	}
	labels := map[string]map[string]string{}
	var err error
	if o.OptOut.Label != "" && len(present) > 0 {
		if o.Namespace != "" {
			var ns corev1.Namespace
			if err = c.Get().AbsPath("/api/v1/namespaces", o.Namespace).Do(ctx).Into(&ns); err == nil {
				labels[ns.Name] = ns.Labels
			}
		} else {
			all := o
			all.Namespace = ""
			err = eachItem(ctx, c, namespaces, all, func(raw []byte) {
				var ns metav1.PartialObjectMetadata
				if sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &ns) == nil {
					labels[ns.Name] = ns.Labels
				}
			}, func() { clear(labels) })
		}
		if err != nil && o.Note != nil {
			o.Note(fmt.Sprintf("cannot read namespace labels (%v): namespaces labelled %s=true are audited as if podguard saw them", err, o.OptOut.Label))
		}
	}
	out := map[string]string{}
	for ns := range present {
		if why := o.OptOut.Reason(ns, labels[ns]); why != "" && ns != "" {
			out[ns] = why
		}
	}
	return out
}

// compact interns the spec of a Pod a workload owns, and drops the pod
// template of a ReplicaSet or Job a judged workload owns: it is collapsed
// into its owner, never judged (its Pods are, as they run).
func compact(obj runtime.Object, specs *report.Interner) runtime.Object {
	if p, ok := obj.(*corev1.Pod); ok {
		return specs.Pod(p)
	}
	if t, ok := podspec.Find(obj); ok && t.Template && report.CollapsedOwner(t.ObjectMeta) {
		*t.Spec = corev1.PodSpec{}
	}
	return obj
}

// rawClient is a REST client of the API server's JSON, for raw pages.
func rawClient(cfg *rest.Config) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	c.ContentType, c.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	if c.UserAgent == "" {
		c.UserAgent = "podguard-audit"
	}
	return rest.UnversionedRESTClientFor(c)
}

// maxRestarts bounds how often a list restarts after its continue token
// expired (410 Gone: the pages took longer than etcd's compaction window).
const maxRestarts = 3

// eachItem lists one resource page by page and hands over each item's
// JSON as its page arrives. When a continue token expires (410 Gone) the
// list starts over after restart is called, which discards what the
// aborted list handed over.
func eachItem(ctx context.Context, c *rest.RESTClient, res Resource, o ListOptions, fn func([]byte), restart func()) error {
	path := listPath(res, o.Namespace)
	cont := ""
	for restarts := 0; ; {
		result := c.Get().AbsPath(path).Param("limit", strconv.FormatInt(o.ChunkSize, 10)).Param("continue", cont).Do(ctx)
		// Error, not Raw's error, decodes the API server's Status: the
		// message of a 403 names the user and the resource.
		err := result.Error()
		body, _ := result.Raw()
		if apierrors.IsResourceExpired(err) && restarts < maxRestarts {
			restarts++
			cont = ""
			restart()
			continue
		}
		if err != nil {
			return err
		}
		var page struct {
			Metadata metav1.ListMeta `json:"metadata"`
			Items    []rawJSON       `json:"items"`
		}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &page); err != nil {
			return fmt.Errorf("the API server sent a %s list that is not JSON: %w", res, err)
		}
		for _, it := range page.Items {
			fn(it)
		}
		if page.Metadata.Continue == "" {
			return nil
		}
		cont = page.Metadata.Continue
	}
}

// rawJSON keeps an item's bytes for decoding on its own.
type rawJSON []byte

// UnmarshalJSON keeps the item's bytes.
func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = b
	return nil
}

func listPath(res Resource, ns string) string {
	p := "/apis/" + res.GroupVersion.String()
	if res.GroupVersion.Group == "" {
		p = "/api/" + res.GroupVersion.Version
	}
	if ns != "" {
		p += "/namespaces/" + ns
	}
	return p + "/" + res.Resource
}

// decode decodes one item into its typed object.
func decode(res Resource, raw []byte) (runtime.Object, error) {
	obj, ok := podspec.NewObject(schema.GroupKind{Group: res.GroupVersion.Group, Kind: res.Kind})
	if !ok {
		return nil, fmt.Errorf("podguard does not judge %s", res.Kind)
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, obj); err != nil {
		return nil, err
	}
	obj.GetObjectKind().SetGroupVersionKind(res.GroupVersion.WithKind(res.Kind))
	return obj, nil
}

// undecodable is the skipped subject of an item that cannot be decoded,
// named by whatever of its metadata can be read.
func undecodable(res Resource, raw []byte, err error) report.Subject {
	var m struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	_ = sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &m)
	name := m.Metadata.Name
	if name == "" {
		name = "(unnamed)"
	}
	return report.Subject{APIVersion: res.GroupVersion.String(), Kind: res.Kind, Namespace: m.Metadata.Namespace, Name: name,
		Result: report.Skip, Reason: fmt.Sprintf("cannot be decoded as %s: %v", res.Kind, err)}
}

// explain turns a list error into one that says what to do.
func explain(err error, cfg *rest.Config, res Resource, ns string) error {
	scope := "at the cluster scope"
	if ns != "" {
		scope = fmt.Sprintf("in namespace %q", ns)
	}
	var status apierrors.APIStatus
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case apierrors.IsForbidden(err):
		return fmt.Errorf("listing %s %s is forbidden (%v); an audit needs list on %s: bind the chart's audit-reader ClusterRole, or see the README's \"Audit RBAC\"",
			res, scope, err, resourceNames())
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server at %s refused the credentials (%v): check --kubeconfig and --context", cfg.Host, err)
	case apierrors.IsNotFound(err) && ns == "":
		return fmt.Errorf("the API server at %s does not serve %s/%s: %v", cfg.Host, res.GroupVersion, res.Resource, err)
	case unreachable(err):
		return fmt.Errorf("cannot reach the API server at %s: %v (check --kubeconfig, --context and that the cluster is up)", cfg.Host, err)
	case errors.As(err, &status):
		return fmt.Errorf("listing %s %s: %v", res, scope, err)
	}
	return fmt.Errorf("listing %s %s from %s: %v", res, scope, cfg.Host, err)
}

func unreachable(err error) bool {
	var ne net.Error
	var ue *url.Error
	return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || errors.As(err, &ne) || errors.As(err, &ue) ||
		errors.Is(err, http.ErrHandlerTimeout)
}

func resourceNames() string {
	var names []string
	for _, r := range Listed {
		names = append(names, r.String())
	}
	return strings.Join(names, ", ")
}

// exceptionsResource is where PodGuardExceptions are served.
var exceptionsResource = Resource{schema.GroupVersion{Group: v1alpha1.GroupName, Version: v1alpha1.Version}, "podguardexceptions", v1alpha1.ExceptionKind}

// ListExceptions reads the cluster's PodGuardExceptions (of one namespace,
// or all): none when their CRD is not served. Other errors (no list
// permission) are returned with what to do.
func ListExceptions(ctx context.Context, cfg *rest.Config, namespace string) ([]v1alpha1.PodGuardException, error) {
	c, err := rawClient(cfg)
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.PodGuardException
	var bad error
	err = eachItem(ctx, c, exceptionsResource, ListOptions{Namespace: namespace, ChunkSize: 500}, func(raw []byte) {
		var x v1alpha1.PodGuardException
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &x); err != nil {
			bad = fmt.Errorf("a PodGuardException does not decode: %w", err)
			return
		}
		out = append(out, x)
	}, func() { out = out[:0] })
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil // the CRD is not installed: no exceptions
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("listing PodGuardExceptions is forbidden (%v): an audit needs list on podguardexceptions.podguard.dev to apply them as the webhook does", err)
	case err != nil:
		return nil, explain(err, cfg, exceptionsResource, namespace)
	}
	return out, bad
}
