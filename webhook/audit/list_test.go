package audit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	"podguard.dev/podguard/webhook/audit"
)

// fakeLists serves list pages. It stands in for kube-apiserver only for
// what a real one cannot be made to do on demand: serve an item that does
// not decode, and expire a continue token mid-list (410 Gone). Everything
// else is tested against a real kube-apiserver.
type fakeLists struct {
	mu       sync.Mutex
	requests []string
	expired  bool
}

func (f *fakeLists) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.Path+"?"+r.URL.RawQuery)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/api/v1/pods" {
		fmt.Fprint(w, `{"metadata":{},"items":[]}`)
		return
	}
	pod := func(name string) string {
		return fmt.Sprintf(`{"metadata":{"name":%q,"namespace":"a","uid":%q},"spec":{"containers":[{"name":"c","image":"i"}]}}`, name, name)
	}
	switch r.URL.Query().Get("continue") {
	case "":
		fmt.Fprintf(w, `{"metadata":{"continue":"page2"},"items":[%s,%s]}`, pod("p1"),
			`{"metadata":{"name":"broken","namespace":"a"},"spec":{"containers":"not a list"}}`)
	case "page2":
		f.mu.Lock()
		first := !f.expired
		f.expired = true
		f.mu.Unlock()
		if first {
			w.WriteHeader(http.StatusGone)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410,"message":"The provided continue parameter is too old"}`)
			return
		}
		fmt.Fprintf(w, `{"metadata":{},"items":[%s]}`, pod("p2"))
	}
}

// TestListDecodesEachItem: an item that does not decode is a skipped
// subject named by its metadata; a list whose continue token expired
// starts over without judging anything twice; every request is paged.
func TestListDecodesEachItem(t *testing.T) {
	f := &fakeLists{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	in, err := audit.List(context.Background(), &rest.Config{Host: srv.URL}, audit.ListOptions{ChunkSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Objects) != 2 {
		t.Errorf("%d objects, want p1 and p2 once each", len(in.Objects))
	}
	if len(in.Skipped) != 1 || in.Skipped[0].Name != "broken" || in.Skipped[0].Namespace != "a" || !strings.Contains(in.Skipped[0].Reason, "cannot be decoded as Pod") {
		t.Errorf("skipped: %+v", in.Skipped)
	}
	for _, r := range f.requests {
		if !strings.Contains(r, "limit=2") {
			t.Errorf("unpaged request %s", r)
		}
	}
	if got := len(f.requests); got != 4+len(audit.Listed)-1 {
		t.Errorf("%d requests: %v", got, f.requests)
	}
}
