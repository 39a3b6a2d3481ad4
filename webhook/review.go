package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	jsoniter "github.com/json-iterator/go"
	"golang.org/x/sync/semaphore"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"podguard.dev/podguard/policies/podspec"
)

// reviewHandler is podguard's HTTP entry point. It reads the body within a
// deadline and a server-wide memory budget, then decodes an
// admission.k8s.io/v1 AdmissionReview (what API servers since 1.16 send
// when the configuration asks for v1, as podguard's does) in one streaming
// pass: the envelope's fields are read in order and the object is decoded
// straight into the typed object of its kind, as soon as its bytes are
// reached. A body the fast path cannot take (fields in an unusual order,
// for one) goes through the generic decoding controller-runtime's webhook
// uses; a test fuzzes both against each other. Every request is answered
// with a complete admission.k8s.io/v1 AdmissionReview carrying the
// request's uid when it can be read.
type reviewHandler struct {
	handler *Handler
	limits  bodyLimits
	// draining, once set, closes each connection after its answer, so the
	// API server reconnects to a replica that is not shutting down.
	draining *atomic.Bool
	log      logr.Logger
	metrics  *Metrics
}

// bodyLimits bound what reading request bodies may cost.
type bodyLimits struct {
	// max is the largest body accepted.
	max int64
	// readTimeout is how long the whole body may take to arrive.
	readTimeout time.Duration
	// budget caps the bytes held by request bodies being read or answered,
	// across all connections. Memory is charged as it is allocated, for
	// bytes that actually arrived, so a client that announces a large
	// Content-Length and trickles its body holds only what it sent, and
	// only until readTimeout.
	budget *semaphore.Weighted
	// slots caps the reviews decoded and decided at once. The work is CPU
	// bound, so more at once would not go faster; each holds at most one
	// body and maxContainers containers' worth of findings and changes.
	slots *semaphore.Weighted
	// decideWithin bounds a request from its arrival to its answer: the
	// waits for budget and for a slot end there, well before the API
	// server gives up on the call (the webhook configurations'
	// timeoutSeconds), so an answer, even "busy", arrives in time.
	decideWithin time.Duration
	// evictAfter is the age past which a body still arriving may be cut
	// off to free the budget for another: the API server sends a review
	// at once (4 MiB takes milliseconds on a cluster network), so a body
	// still arriving after it is stalled or trickled. Zero never evicts.
	evictAfter time.Duration
	// inflight lists the bodies being read, for eviction.
	inflight *inflightBodies
}

// inflightBodies are the request bodies being read, each with when it
// started and how to cut it off.
type inflightBodies struct {
	mu    sync.Mutex
	reads map[*inflightRead]struct{}
}

type inflightRead struct {
	started time.Time
	// held is the budget the read holds, in bytes (atomic: the reader
	// updates it while others choose whom to evict).
	held atomic.Int64
	// cut ends the read at once (its read deadline set to now).
	cut     func()
	cutOnce sync.Once
	evicted atomic.Bool
}

func (b *inflightBodies) add(r *inflightRead) {
	b.mu.Lock()
	if b.reads == nil {
		b.reads = map[*inflightRead]struct{}{}
	}
	b.reads[r] = struct{}{}
	b.mu.Unlock()
}

func (b *inflightBodies) remove(r *inflightRead) {
	b.mu.Lock()
	delete(b.reads, r)
	b.mu.Unlock()
}

// evict cuts off every body, other than self, that has been arriving for
// longer than age and holds budget; it reports whether it cut any. All of
// them at once: they are stalled or trickled (the API server sends a body
// at once), and cutting one at a time would let the rest keep the budget
// through the semaphore's queue.
func (b *inflightBodies) evict(self *inflightRead, age time.Duration) bool {
	b.mu.Lock()
	var victims []*inflightRead
	for r := range b.reads {
		if r == self || r.evicted.Load() || r.held.Load() == 0 || time.Since(r.started) < age {
			continue
		}
		r.evicted.Store(true)
		victims = append(victims, r)
	}
	b.mu.Unlock()
	for _, v := range victims {
		v.cutOnce.Do(v.cut)
	}
	return len(victims) > 0
}

// Reasons a request is refused before a decision (metric label values).
const (
	refusedMalformed    = "malformed"
	refusedTooLarge     = "too_large"
	refusedReadTimeout  = "read_timeout"
	refusedBusy         = "busy"
	refusedKindMismatch = "kind_mismatch"
)

func (rh *reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rh.draining != nil && rh.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		rh.refuse(w, http.StatusMethodNotAllowed, "", refusedMalformed, fmt.Errorf("method %s: an AdmissionReview is POSTed", r.Method))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		rh.refuse(w, http.StatusOK, "", refusedMalformed, fmt.Errorf("contentType=%q, expected application/json", r.Header.Get("Content-Type")))
		return
	}
	arrived := time.Now()
	body, release, err := rh.limits.read(w, r, arrived)
	defer release()
	if err != nil {
		reason := refusedMalformed
		var re *readError
		if errors.As(err, &re) {
			reason = re.reason
		}
		rh.refuse(w, http.StatusOK, "", reason, err)
		return
	}
	ctx, cancel := context.WithDeadline(r.Context(), arrived.Add(rh.limits.decideWithin))
	err = rh.limits.slots.Acquire(ctx, 1)
	cancel()
	if err != nil {
		rh.refuse(w, http.StatusOK, scrapeUID(body), refusedBusy, errors.New("podguard is deciding too many requests at once; try again"))
		return
	}
	defer rh.limits.slots.Release(1)
	req, obj, ok := decodeReview(body)
	if !ok {
		if req, err = decodeGeneric(body); err != nil {
			rh.refuse(w, http.StatusOK, scrapeUID(body), refusedMalformed, err)
			return
		}
	}
	var resp admission.Response
	func() {
		defer func() {
			if p := recover(); p != nil {
				rh.log.Error(fmt.Errorf("%v", p), "panic while handling a request", "uid", truncate(string(req.UID), maxLogValue))
				resp = admission.Errored(http.StatusInternalServerError, errors.New("internal error"))
			}
		}()
		resp = rh.handler.handle(req, obj)
	}()
	if err := resp.Complete(req); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, err)
	}
	resp.UID = req.UID
	writeReview(w, http.StatusOK, resp, rh.log)
}

// refuse answers a request that cannot be decided with an error review.
// err's text is podguard's own: never decoder output quoting the body.
func (rh *reviewHandler) refuse(w http.ResponseWriter, status int, uid types.UID, reason string, err error) {
	rh.metrics.RequestsRefused.WithLabelValues(reason).Inc()
	rh.log.Info("request refused", "uid", truncate(string(uid), maxLogValue), "refusal", reason, "reason", err.Error())
	resp := admission.Errored(http.StatusBadRequest, err)
	if reason == refusedBusy {
		resp = admission.Errored(http.StatusServiceUnavailable, err)
	}
	resp.UID = uid
	writeReview(w, status, resp, rh.log)
}

// readError is a failure to read the body, with its refusal reason.
type readError struct {
	reason string
	msg    string
}

func (e *readError) Error() string { return e.msg }

// minChunk is the size of the chunks a body is read into.
const minChunk = 32 << 10

// chunks recycles the fixed-size chunks request bodies are read into.
// Reading into chunks rather than a growing buffer means a body being read
// leaves no garbage behind (a doubling buffer discards as much as it
// keeps), so what slow or stalled bodies hold is what the budget charged;
// nothing keeps a reference to a chunk once its review is answered
// (decoding copies strings and raw sub-objects).
var chunks = sync.Pool{New: func() any { b := make([]byte, minChunk); return &b }}

// read reads the whole body within the deadline into chunks, charging
// every chunk to the budget as it is taken. A body of one chunk (most
// reviews) is returned in place; a longer one is joined into one buffer,
// charged too. The caller must call release once the body and the answer
// built from it are no longer needed.
func (l *bodyLimits) read(w http.ResponseWriter, r *http.Request, arrived time.Time) (body []byte, release func(), err error) {
	deadline := arrived.Add(l.readTimeout)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(deadline)
	// Waiting for budget ends with the read, and in any case in time to
	// answer before the API server gives up.
	waitUntil := deadline
	if d := arrived.Add(l.decideWithin); l.decideWithin > 0 && d.Before(waitUntil) {
		waitUntil = d
	}
	ctx, cancel := context.WithDeadline(r.Context(), waitUntil)
	defer cancel()
	self := &inflightRead{started: arrived, cut: func() { _ = rc.SetReadDeadline(time.Now()) }}
	if l.inflight != nil {
		l.inflight.add(self)
		defer l.inflight.remove(self)
	}
	var (
		taken []*[]byte
		held  int64
		size  int // bytes read; the last chunk holds size - (len(taken)-1)*minChunk
	)
	giveBack := func() {
		for _, c := range taken {
			chunks.Put(c)
		}
		taken = nil
	}
	release = func() {
		giveBack()
		if held > 0 {
			l.budget.Release(held)
			held = 0
			self.held.Store(0)
		}
	}
	charge := func(n int64) error {
		// When the budget is spent, bodies that have been arriving for too
		// long (stalled, trickled) are cut off to make room: a review
		// never waits behind a client that does not send.
		for !l.budget.TryAcquire(n) {
			evicted := l.inflight != nil && l.evictAfter > 0 && l.inflight.evict(self, l.evictAfter)
			wait := 50 * time.Millisecond
			if !evicted && l.evictAfter > 0 {
				wait = l.evictAfter / 4
			}
			wctx, wcancel := context.WithTimeout(ctx, wait)
			err := l.budget.Acquire(wctx, n)
			wcancel()
			if err == nil {
				break
			}
			if r.Context().Err() != nil {
				return &readError{refusedMalformed, "the client went away"}
			}
			if self.evicted.Load() {
				return &readError{refusedReadTimeout, "the request body was still arriving when its budget was needed"}
			}
			if ctx.Err() != nil {
				return &readError{refusedBusy, "podguard is reading too many request bodies at once; try again"}
			}
		}
		held += n
		self.held.Store(held)
		return nil
	}
	defer r.Body.Close()
	for {
		if int64(size) > l.max {
			// Drain what follows into a small buffer (within the deadline,
			// up to another max bytes, holding no memory) so a client that
			// sent a little too much reads the answer, not a reset. Past
			// that the connection is cut.
			if n, _ := io.CopyN(io.Discard, r.Body, l.max); n == l.max {
				_ = http.NewResponseController(w).SetReadDeadline(time.Now())
			}
			return nil, release, &readError{refusedTooLarge, fmt.Sprintf("request entity is too large; limit is %d bytes", l.max)}
		}
		fill := size - (len(taken)-1)*minChunk
		if len(taken) == 0 || fill == minChunk {
			if err := charge(minChunk); err != nil {
				return nil, release, err
			}
			taken = append(taken, chunks.Get().(*[]byte))
			fill = 0
		}
		last := *taken[len(taken)-1]
		n, err := r.Body.Read(last[fill:])
		size += n
		switch {
		case err == io.EOF:
			if size == 0 {
				return nil, release, &readError{refusedMalformed, "request body is empty"}
			}
			if len(taken) == 1 {
				return (*taken[0])[:size], release, nil
			}
			if err := charge(int64(size)); err != nil {
				return nil, release, err
			}
			data := make([]byte, 0, size)
			for i, c := range taken {
				data = append(data, (*c)[:min(minChunk, size-i*minChunk)]...)
			}
			// The chunks go back now; the joined copy stays charged.
			n := int64(len(taken)) * minChunk
			giveBack()
			l.budget.Release(n)
			held -= n
			self.held.Store(held)
			return data, release, nil
		case errors.Is(err, os.ErrDeadlineExceeded) && self.evicted.Load():
			return nil, release, &readError{refusedReadTimeout, "the request body was still arriving when its budget was needed"}
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, release, &readError{refusedReadTimeout, fmt.Sprintf("the request body did not arrive within %s", l.readTimeout)}
		case err != nil:
			return nil, release, &readError{refusedMalformed, "reading the request body failed"}
		}
	}
}

func writeReview(w http.ResponseWriter, status int, resp admission.Response, log logr.Logger) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: &resp.AdmissionResponse,
	}
	if err := json.NewEncoder(w).Encode(ar); err != nil {
		log.Error(err, "cannot write the response")
	}
}

// scrapeUID reads request.uid from a body that does not decode as a
// review, so even an error answer names the request it answers.
func scrapeUID(body []byte) types.UID {
	var probe struct {
		Request struct {
			UID json.RawMessage `json:"uid"`
		} `json:"request"`
	}
	if json.Unmarshal(body, &probe) != nil {
		it := jsonAPI.BorrowIterator(body)
		defer jsonAPI.ReturnIterator(it)
		var uid string
		it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
			if field != "request" || it.WhatIsNext() != jsoniter.ObjectValue {
				it.Skip()
				return it.Error == nil
			}
			it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
				if field == "uid" && it.WhatIsNext() == jsoniter.StringValue {
					uid = it.ReadString()
				} else {
					it.Skip()
				}
				return it.Error == nil
			})
			return false
		})
		return types.UID(truncate(uid, 128))
	}
	var uid string
	if json.Unmarshal(probe.Request.UID, &uid) != nil {
		return ""
	}
	return types.UID(truncate(uid, 128))
}

// reviewCodecs decode reviews exactly as controller-runtime's webhook does
// (admission.k8s.io v1 and v1beta1 registered, v1 the default).
var reviewCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	_ = admissionv1.AddToScheme(s)
	_ = admissionv1beta1.AddToScheme(s)
	return serializer.NewCodecFactory(s)
}()

// decodeGeneric decodes a review the way controller-runtime's
// admission.Webhook does, for bodies the fast path does not take. Only
// admission.k8s.io/v1 is answered: podguard's configurations ask for it.
func decodeGeneric(body []byte) (admission.Request, error) {
	ar := admissionv1.AdmissionReview{}
	gvk := admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")
	_, got, err := reviewCodecs.UniversalDeserializer().Decode(body, &gvk, &ar)
	if err != nil {
		// The deserializer's messages can quote the body: never pass them on.
		return admission.Request{}, errors.New("the body is not an admission.k8s.io/v1 AdmissionReview (malformed JSON, or a field of the wrong type)")
	}
	if got == nil || *got != gvk {
		return admission.Request{}, fmt.Errorf("podguard answers admission.k8s.io/v1 AdmissionReviews only; set admissionReviewVersions: [v1] in the webhook configuration")
	}
	if ar.Request == nil {
		return admission.Request{}, errors.New("the AdmissionReview has no request")
	}
	return admission.Request{AdmissionRequest: *ar.Request}, nil
}

// decodeReview reads a v1 AdmissionReview in one pass. ok is false when the
// body is anything else, for the generic path to answer. obj is the decoded
// object when its kind was known before its bytes (the API server writes
// kind first); otherwise req.Object.Raw holds it.
func decodeReview(body []byte) (req admission.Request, obj runtime.Object, ok bool) {
	if !utf8.Valid(body) {
		// encoding/json replaces invalid UTF-8 with U+FFFD; jsoniter keeps
		// the bytes. API servers send valid UTF-8; the rest goes generic.
		return req, nil, false
	}
	if !json.Valid(body) {
		// jsoniter takes what is not JSON (a raw control character in a
		// string), which the generic decoder refuses: the same scanner as
		// the generic path's says what is JSON.
		return req, nil, false
	}
	it := jsonAPI.BorrowIterator(body)
	defer jsonAPI.ReturnIterator(it)
	var apiVersion, kind string
	var seen fieldSet
	hasRequest := false
	it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		if !seen.first(field, reviewFields) {
			// A duplicate key: decoders differ on which one wins. Let the
			// generic path decide.
			it.ReportError("decodeReview", "duplicate key")
			return false
		}
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
			if typeMetaKey(field) {
				// controller-runtime reads apiVersion and kind case-insensitively
				// ("KIND" counts); the fast path does not guess.
				it.ReportError("decodeReview", "type field in another case")
				return false
			}
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
	var seen fieldSet
	it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		if !seen.first(field, requestFields) {
			it.ReportError("readRequest", "duplicate key")
			return false
		}
		switch field {
		case "uid":
			r.UID = types.UID(it.ReadString())
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
				if !readObject(it, o, r.Kind) {
					it.ReportError("readRequest", "object not taken by the fast path")
					return false
				}
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
	if isNull(r.Options.Raw) {
		r.Options.Raw = nil
	}
	return obj
}

// The fields the fast path reads, for duplicate detection without a map.
var (
	reviewFields  = []string{"apiVersion", "kind", "request"}
	requestFields = []string{"uid", "kind", "resource", "subResource", "requestKind", "requestResource", "requestSubResource",
		"name", "namespace", "operation", "userInfo", "dryRun", "object", "oldObject", "options"}
)

// fieldSet remembers which of a list of field names were seen.
type fieldSet uint32

// first reports whether field is seen for the first time (fields not in
// names always are).
func (s *fieldSet) first(field string, names []string) bool {
	for i, n := range names {
		if n == field {
			bit := fieldSet(1) << i
			if *s&bit != 0 {
				return false
			}
			*s |= bit
			return true
		}
	}
	return true
}

func isNull(b []byte) bool { return len(b) == 4 && string(b) == "null" }

// typeMetaKey reports whether a key that is not exactly "apiVersion" or
// "kind" still names one of them to encoding/json, which the API
// machinery's kind detection uses: it matches keys case-insensitively.
func typeMetaKey(key string) bool {
	return strings.EqualFold(key, "kind") || strings.EqualFold(key, "apiVersion")
}

// readObject decodes the object of a request into o, one top-level field at
// a time, and reports whether the fast path may keep it: only when its
// apiVersion and kind are exactly those of the request and of o's Go type
// (anything else is refused or converted by the generic path, which
// decides), and no top-level key repeats (decoders differ on merging).
func readObject(it *jsoniter.Iterator, o runtime.Object, want metav1.GroupVersionKind) bool {
	fields := objectFieldsOf(o)
	if fields == nil || (schema.GroupVersion{Group: want.Group, Version: want.Version}).String() != fields.groupVersion {
		it.Skip()
		return false
	}
	v := reflect.ValueOf(o).Elem()
	var apiVersion, kind string
	var seen uint64
	ok := true
	it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		i, known := fields.index[key]
		if !known {
			if typeMetaKey(key) {
				ok = false
				return false
			}
			it.Skip()
			return it.Error == nil
		}
		if seen&(1<<i) != 0 {
			ok = false
			return false
		}
		seen |= 1 << i
		switch key {
		case "apiVersion":
			apiVersion = it.ReadString()
		case "kind":
			kind = it.ReadString()
		default:
			it.ReadVal(v.Field(i).Addr().Interface())
		}
		return it.Error == nil
	})
	if !ok || it.Error != nil || apiVersion != fields.groupVersion || kind != want.Kind {
		return false
	}
	o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Group: want.Group, Version: want.Version, Kind: kind})
	return true
}

// objectFields is the JSON layout of one object type's top level: the
// struct field index of each key, and the apiVersion of the Go type.
type objectFields struct {
	index        map[string]int
	groupVersion string
}

var objectLayouts sync.Map // reflect.Type -> *objectFields

// objectFieldsOf returns o's layout, read once per type from its struct
// tags; apiVersion and kind map to the TypeMeta field's index (0).
func objectFieldsOf(o runtime.Object) *objectFields {
	t := reflect.TypeOf(o).Elem()
	if f, ok := objectLayouts.Load(t); ok {
		return f.(*objectFields)
	}
	gv, ok := typeGroupVersions[t.PkgPath()]
	if !ok || t.NumField() > 32 {
		return nil
	}
	f := &objectFields{index: map[string]int{}, groupVersion: gv}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		switch {
		case sf.Type == reflect.TypeOf(metav1.TypeMeta{}):
			// Two bits: apiVersion and kind each appear once.
			f.index["apiVersion"], f.index["kind"] = 32, 33
		case name != "" && name != "-":
			f.index[name] = i
		}
	}
	objectLayouts.Store(t, f)
	return f
}

// typeGroupVersions maps the Go packages of the kinds podguard decodes to
// the apiVersion their types are.
var typeGroupVersions = map[string]string{
	"k8s.io/api/core/v1":  "v1",
	"k8s.io/api/apps/v1":  "apps/v1",
	"k8s.io/api/batch/v1": "batch/v1",
}
