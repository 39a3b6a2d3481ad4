package webhook

// The fast path (decodeReview) is proven equal to the generic decoding of
// controller-runtime's admission.Webhook: for arbitrary bodies and for
// reviews of every kind, subresource and operation, either both produce
// the same admission.Request and the same typed object, or the fast path
// declines and the generic path decides. make test runs the seeds and a
// short fuzzing session.

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"podguard.dev/podguard/policies/podspec"
)

var updateReviews = flag.Bool("update-reviews", false, "rewrite testdata/reviews from the generator")

// oracle decodes a body as controller-runtime's admission.Webhook does and
// returns the request its handler would get (ok false if it would not).
func oracle(body []byte) (admission.Request, bool) {
	var got *admission.Request
	wh := &admission.Webhook{Handler: admission.HandlerFunc(func(_ context.Context, req admission.Request) admission.Response {
		got = &req
		return admission.Allowed("")
	})}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	wh.ServeHTTP(httptest.NewRecorder(), r)
	if got == nil {
		return admission.Request{}, false
	}
	return *got, true
}

var oracleDecoder = admission.NewDecoder(func() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	return s
}())

// compare checks one body: the fast path must agree with the oracle or decline.
func compare(t *testing.T, body []byte) {
	req, obj, ok := decodeReview(body)
	if !ok {
		return // the generic path decides
	}
	want, ok := oracle(body)
	if !ok {
		t.Fatalf("the fast path accepts a body controller-runtime refuses: %.300s", body)
	}
	gotReq, wantReq := req.AdmissionRequest, want.AdmissionRequest
	if obj != nil {
		// The fast path decoded the object inline; the oracle's is raw.
		gotReq.Object, wantReq.Object = runtime.RawExtension{}, runtime.RawExtension{}
		gk := schema.GroupKind{Group: want.Kind.Group, Kind: want.Kind.Kind}
		wantObj, _ := podspec.NewObject(gk)
		if err := oracleDecoder.DecodeRaw(want.Object, wantObj); err != nil {
			t.Fatalf("the fast path decodes an object controller-runtime cannot (%v): %.300s", err, body)
		}
		if !equality.Semantic.DeepEqual(obj, wantObj) {
			t.Fatalf("decoded objects differ\n fast    %+v\n generic %+v\n body %.500s", obj, wantObj, body)
		}
	}
	// Raw bytes may differ in white space only; compare them as JSON.
	for _, p := range []struct{ a, b *runtime.RawExtension }{{&gotReq.Object, &wantReq.Object}, {&gotReq.OldObject, &wantReq.OldObject}, {&gotReq.Options, &wantReq.Options}} {
		if !sameJSON(p.a.Raw, p.b.Raw) {
			t.Fatalf("raw %s differs from %s: %.300s", p.a.Raw, p.b.Raw, body)
		}
		*p.a, *p.b = runtime.RawExtension{}, runtime.RawExtension{}
	}
	if !equality.Semantic.DeepEqual(gotReq, wantReq) {
		t.Fatalf("requests differ\n fast    %+v\n generic %+v\n body %.500s", gotReq, wantReq, body)
	}
}

func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(x, y)
}

func FuzzReviewDecode(f *testing.F) {
	files, err := filepath.Glob("testdata/reviews/*.json")
	if err != nil || len(files) < 20 {
		f.Fatalf("want the recorded reviews in testdata/reviews (go test ./webhook -run TestReviewSeeds -update-reviews): %d, %v", len(files), err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		// Variations the fast path must handle or decline.
		s := string(data)
		f.Add([]byte(strings.Replace(s, `"kind":{`, `"Kind":{`, 1)))
		f.Add([]byte(strings.Replace(s, `"spec":`, `"SPEC":`, 1)))
		f.Add([]byte(strings.Replace(s, `"request":{`, `"request":{"uid":"dup",`, 1)))
		f.Add([]byte(s + " {}"))
		f.Add([]byte(strings.Replace(s, `"operation":"CREATE"`, `"operation":"CREATE","operation":"DELETE"`, 1)))
		// The object's own apiVersion and kind: another kind, another
		// case, twice, or a key repeated at its top level.
		f.Add([]byte(strings.Replace(s, `"object":{"kind":"`, `"object":{"kind":"{`, 1)))
		f.Add([]byte(strings.Replace(s, `,"metadata":`, `,"KIND":"Pod","metadata":`, 1)))
		f.Add([]byte(strings.Replace(s, `,"metadata":`, `,"\u212aind":"Pod","metadata":`, 1)))
		f.Add([]byte(strings.Replace(s, `,"metadata":`, `,"apiVersion":"v2","metadata":`, 1)))
		f.Add([]byte(strings.Replace(s, `"object":{`, `"object":{"spec":{},`, 1)))
		f.Add([]byte(strings.Replace(s, `{"kind":"AdmissionReview"`, `{"Kind":"x","kind":"AdmissionReview"`, 1)))
		f.Add([]byte(strings.Replace(s, `"group":"apps"`, `"group":"extensions"`, 1)))
	}
	f.Fuzz(func(t *testing.T, body []byte) { compare(t, body) })
}

// TestReviewSeeds checks the seed reviews decode on the fast path (they are
// what API servers send) and, with -update-reviews, writes them.
func TestReviewSeeds(t *testing.T) {
	reviews := seedReviews(t)
	if *updateReviews {
		_ = os.RemoveAll("testdata/reviews")
		if err := os.MkdirAll("testdata/reviews", 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range reviews {
			if err := os.WriteFile(filepath.Join("testdata/reviews", name+".json"), body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, body := range reviews {
		on, err := os.ReadFile(filepath.Join("testdata/reviews", name+".json"))
		if err != nil || string(on) != string(body) {
			t.Errorf("testdata/reviews/%s.json is missing or stale (-update-reviews rewrites it)", name)
		}
		if _, _, ok := decodeReview(body); !ok {
			t.Errorf("%s: an API server's review must take the fast path", name)
		}
		compare(t, body)
	}
}

// seedReviews builds reviews as kube-apiserver serializes them (its JSON
// encoding of admission.k8s.io/v1 AdmissionReview, fields in struct order).
func seedReviews(t *testing.T) map[string][]byte {
	t.Helper()
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps",
		Labels: map[string]string{"app": "p"}, Annotations: map[string]string{"a": "b"}, OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u"}}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			InitContainers:  []corev1.Container{{Name: "init", Image: "i:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
			Containers: []corev1.Container{{Name: "c", Image: "c:1", Env: []corev1.EnvVar{{Name: "A", Value: "b"}, {Name: "S", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k", LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}},
				Resources:       corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}},
				SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, Privileged: ptr.To(false)},
				Ports:           []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}}},
			Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		}}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "p"}}, Spec: pod.Spec}
	objects := map[string]runtime.Object{
		"pod":                   pod,
		"podtemplate":           &corev1.PodTemplate{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodTemplate"}, Template: tmpl},
		"replicationcontroller": &corev1.ReplicationController{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"}, Spec: corev1.ReplicationControllerSpec{Template: &tmpl}},
		"deployment":            &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, Spec: appsv1.DeploymentSpec{Template: tmpl, Replicas: ptr.To[int32](3)}},
		"replicaset":            &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, Spec: appsv1.ReplicaSetSpec{Template: tmpl}},
		"statefulset":           &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, Spec: appsv1.StatefulSetSpec{Template: tmpl}},
		"daemonset":             &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, Spec: appsv1.DaemonSetSpec{Template: tmpl}},
		"job":                   &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, Spec: batchv1.JobSpec{Template: tmpl}},
		"cronjob":               &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, Spec: batchv1.CronJobSpec{Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}},
	}
	resources := map[string]string{"pod": "pods", "podtemplate": "podtemplates", "replicationcontroller": "replicationcontrollers", "deployment": "deployments",
		"replicaset": "replicasets", "statefulset": "statefulsets", "daemonset": "daemonsets", "job": "jobs", "cronjob": "cronjobs"}
	user := authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller", UID: "uid-1",
		Groups: []string{"system:serviceaccounts", "system:authenticated"}, Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"x"}}}
	raw := func(o any) runtime.RawExtension {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	review := func(name string, o runtime.Object, op admissionv1.Operation, sub string, withOld, dry bool) []byte {
		gvk := o.GetObjectKind().GroupVersionKind()
		gvr := metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resources[name]}
		req := &admissionv1.AdmissionRequest{UID: types.UID("7d5c2a8e-0c1b-4d4e-9d1a-" + name), Kind: metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Resource: gvr, SubResource: sub, RequestKind: &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind}, RequestResource: &gvr,
			RequestSubResource: sub, Name: "p", Namespace: "apps", Operation: op, UserInfo: user, Object: raw(o), DryRun: ptr.To(dry)}
		switch op {
		case admissionv1.Create:
			req.Options = raw(metav1.CreateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"}, FieldManager: "kubectl-client-side-apply"})
		case admissionv1.Update:
			req.Options = raw(metav1.UpdateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "UpdateOptions"}, FieldManager: "kubectl"})
		}
		if withOld {
			req.OldObject = raw(o)
		}
		b, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	out := map[string][]byte{}
	for name, o := range objects {
		out[name+"-create"] = review(name, o, admissionv1.Create, "", false, false)
		out[name+"-update-dryrun"] = review(name, o, admissionv1.Update, "", true, true)
	}
	ephemeral := pod.DeepCopy()
	ephemeral.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox:1"}, TargetContainerName: "c"}}
	out["pod-ephemeralcontainers"] = review("pod", ephemeral, admissionv1.Update, "ephemeralcontainers", true, false)
	out["pod-resize"] = review("pod", pod, admissionv1.Update, "resize", true, false)
	out["pod-status"] = review("pod", pod, admissionv1.Update, "status", true, false)
	del := review("pod", pod, admissionv1.Delete, "", true, false)
	var ar admissionv1.AdmissionReview
	_ = json.Unmarshal(del, &ar)
	ar.Request.Object, ar.Request.Options = runtime.RawExtension{}, raw(metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}})
	out["pod-delete"], _ = json.Marshal(ar)
	return out
}
