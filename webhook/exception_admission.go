package webhook

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"podguard.dev/podguard/policies/api/v1alpha1"
	"podguard.dev/podguard/policies/safetext"
)

// exceptionKind is PodGuardException's group and kind.
var exceptionKind = schema.GroupKind{Group: v1alpha1.GroupName, Kind: v1alpha1.ExceptionKind}

// exception admits a PodGuardException only if the policy in force allows
// it: a rule the policy lets be excepted, in a namespace it allows, with
// an expiry in the future and within exceptions.maxDuration. Its schema
// (the CRD) refuses the rest; this is what only the policy knows. The
// mutating endpoint has nothing to do for it.
func (h *Handler) exception(req admission.Request) (admission.Response, decision) {
	if h.Mutating {
		return allowed("PodGuardExceptions are not mutated")
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allowed("operation not judged")
	}
	if len(req.Object.Raw) == 0 {
		return errored(http.StatusBadRequest, fmt.Errorf("the request carries no object"))
	}
	var x v1alpha1.PodGuardException
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &x); err != nil {
		return errored(http.StatusBadRequest, fmt.Errorf("decoding the PodGuardException: %v", err))
	}
	if x.Namespace == "" {
		x.Namespace = req.Namespace
	}
	problems := h.Store.Enforcer().ValidateException(&x, time.Now())
	d := decision{meta: &x.ObjectMeta}
	if len(problems) == 0 {
		d.result, d.reason = "allowed", "PodGuardException allowed by the policy"
		return admission.Allowed(""), d
	}
	causes := make([]metav1.StatusCause, 0, len(problems))
	for _, p := range problems {
		field, msg, _ := strings.Cut(p, ": ")
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: field, Message: safetext.Line(msg)})
	}
	msg := fmt.Sprintf("podguard: the policy does not allow this PodGuardException: %s", safetext.Line(strings.Join(problems, "; ")))
	resp := admission.Denied(msg)
	resp.Result.Reason = metav1.StatusReasonInvalid
	resp.Result.Code = http.StatusUnprocessableEntity
	resp.Result.Details = &metav1.StatusDetails{Name: x.Name, Group: v1alpha1.GroupName, Kind: v1alpha1.ExceptionKind, Causes: causes}
	d.result, d.reason = "denied", msg
	return resp, d
}
