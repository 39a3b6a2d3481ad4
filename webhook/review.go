package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/go-logr/logr"
	jsoniter "github.com/json-iterator/go"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"podguard.dev/podguard/policies/podspec"
)

// reviewHandler is podguard's HTTP entry point. An admission.k8s.io/v1
// AdmissionReview (what API servers since 1.16 send when the configuration
// asks for v1, as podguard's does) is decoded in one streaming pass: the
// envelope's fields are read in order and the object is decoded straight
// into the typed object of its kind, as soon as its bytes are reached. The
// generic path decodes the envelope through a scheme and the object again,
// which is most of a webhook's cost per request. Anything else (another
// review version, another content type, a body that does not parse) goes to
// controller-runtime's admission.Webhook, which answers it as it always does.
type reviewHandler struct {
	handler  *Handler
	fallback http.Handler
	max      int64
	log      logr.Logger
}

var jsonAPI = jsoniter.ConfigCompatibleWithStandardLibrary

func (rh *reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.Header.Get("Content-Type") != "application/json" {
		rh.fallback.ServeHTTP(w, r)
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	body, err := readBody(buf, r, rh.max)
	r.Body.Close()
	if err != nil || int64(len(body)) > rh.max {
		if err == nil {
			err = fmt.Errorf("request entity is too large; limit is %d bytes", rh.max)
		}
		rh.log.Info("request refused", "reason", err.Error())
		writeReview(w, admission.Errored(http.StatusBadRequest, err), rh.log)
		return
	}
	req, obj, ok := decodeReview(body)
	if !ok {
		r.Body = io.NopCloser(bytes.NewReader(body))
		rh.fallback.ServeHTTP(w, r)
		return
	}
	var resp admission.Response
	func() {
		defer func() {
			if p := recover(); p != nil {
				rh.log.Error(fmt.Errorf("%v", p), "panic while handling a request", "uid", string(req.UID))
				resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("internal error"))
			}
		}()
		resp = rh.handler.handle(req, obj)
	}()
	if err := resp.Complete(req); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, err)
		resp.UID = req.UID
	}
	writeReview(w, resp, rh.log)
}

// bodies recycles request buffers: every review is read whole, and nothing
// keeps a reference to the bytes once answered (decoding copies strings and
// raw sub-objects).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBody(b *bytes.Buffer) {
	if b.Cap() > 256<<10 {
		return // let an unusually large one go
	}
	b.Reset()
	bodies.Put(b)
}

// readBody reads the request into buf, grown once to Content-Length.
func readBody(buf *bytes.Buffer, r *http.Request, max int64) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= max {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, max+1))
	return buf.Bytes(), err
}

func writeReview(w http.ResponseWriter, resp admission.Response, log logr.Logger) {
	w.Header().Set("Content-Type", "application/json")
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: &resp.AdmissionResponse,
	}
	if err := json.NewEncoder(w).Encode(ar); err != nil {
		log.Error(err, "cannot write the response")
	}
}

// decodeReview reads a v1 AdmissionReview in one pass. ok is false when the
// body is anything else, for the generic path to answer. obj is the decoded
// object when its kind was known before its bytes (the API server writes
// kind first); otherwise req.Object.Raw holds it.
func decodeReview(body []byte) (req admission.Request, obj runtime.Object, ok bool) {
	it := jsonAPI.BorrowIterator(body)
	defer jsonAPI.ReturnIterator(it)
	var apiVersion, kind string
	hasRequest := false
	it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		switch field {
		case "apiVersion":
			apiVersion = it.ReadString()
		case "kind":
			kind = it.ReadString()
		case "request":
			if it.WhatIsNext() != jsoniter.ObjectValue {
				it.Skip()
				return true
			}
			hasRequest = true
			obj = readRequest(it, &req.AdmissionRequest)
		default:
			it.Skip()
		}
		return it.Error == nil
	})
	if it.Error != nil || !hasRequest || apiVersion != admissionv1.SchemeGroupVersion.String() || kind != "AdmissionReview" {
		return req, nil, false
	}
	// Nothing may follow the review but white space.
	if it.WhatIsNext() != jsoniter.InvalidValue || it.Error == nil {
		return req, nil, false
	}
	return req, obj, true
}

func readRequest(it *jsoniter.Iterator, r *admissionv1.AdmissionRequest) runtime.Object {
	var obj runtime.Object
	it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		switch field {
		case "uid":
			r.UID = typesUID(it.ReadString())
		case "kind":
			it.ReadVal(&r.Kind)
		case "resource":
			it.ReadVal(&r.Resource)
		case "subResource":
			r.SubResource = it.ReadString()
		case "requestKind":
			it.ReadVal(&r.RequestKind)
		case "requestResource":
			it.ReadVal(&r.RequestResource)
		case "requestSubResource":
			r.RequestSubResource = it.ReadString()
		case "name":
			r.Name = it.ReadString()
		case "namespace":
			r.Namespace = it.ReadString()
		case "operation":
			r.Operation = admissionv1.Operation(it.ReadString())
		case "userInfo":
			it.ReadVal(&r.UserInfo)
		case "dryRun":
			it.ReadVal(&r.DryRun)
		case "object":
			gk := schema.GroupKind{Group: r.Kind.Group, Kind: r.Kind.Kind}
			if o, known := podspec.NewObject(gk); known && it.WhatIsNext() == jsoniter.ObjectValue {
				it.ReadVal(o)
				obj = o
			} else {
				r.Object.Raw = it.SkipAndReturnBytes()
			}
		case "oldObject":
			r.OldObject.Raw = it.SkipAndReturnBytes()
		case "options":
			r.Options.Raw = it.SkipAndReturnBytes()
		default:
			it.Skip()
		}
		return it.Error == nil
	})
	if isNull(r.Object.Raw) {
		r.Object.Raw = nil
	}
	if isNull(r.OldObject.Raw) {
		r.OldObject.Raw = nil
	}
	return obj
}

func isNull(b []byte) bool { return len(b) == 4 && string(b) == "null" }
