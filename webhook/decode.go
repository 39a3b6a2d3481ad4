package webhook

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
	"github.com/modern-go/reflect2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"podguard.dev/podguard/policies/podspec"
)

// maxContainers caps each container list (init, regular, ephemeral) of a
// decoded pod spec. The work of judging and fixing a pod grows with its
// containers (about 14 KB allocated per container); the cap bounds it per
// request whatever the body holds. No real pod comes near it.
const maxContainers = 1000

// jsonAPI decodes like the API machinery's JSON serializer where it
// matters for typed objects: field names are case-sensitive (encoding/json
// and jsoniter's standard-library mode would read "SPEC" as "spec"). It
// stops at the maxContainers+1st container, before allocating it.
var jsonAPI = func() jsoniter.API {
	api := jsoniter.Config{EscapeHTML: true, SortMapKeys: true, ValidateJsonRawMessage: true, CaseSensitive: true}.Froze()
	api.RegisterExtension(&cappedLists{})
	return api
}()

// errTooManyContainers marks the decoding error of a list over the cap.
const errTooManyContainers = "podguard: more than 1000 entries"

type cappedLists struct{ jsoniter.DummyExtension }

var (
	containersType = reflect2.TypeOf([]corev1.Container{})
	ephemeralType  = reflect2.TypeOf([]corev1.EphemeralContainer{})
)

func (*cappedLists) CreateDecoder(typ reflect2.Type) jsoniter.ValDecoder {
	switch typ {
	case containersType:
		return cappedSlice[corev1.Container]{}
	case ephemeralType:
		return cappedSlice[corev1.EphemeralContainer]{}
	}
	return nil
}

// cappedSlice decodes a JSON array into a []T of at most maxContainers
// entries, with encoding/json's semantics otherwise (null: nil).
type cappedSlice[T any] struct{}

func (cappedSlice[T]) Decode(ptr unsafe.Pointer, it *jsoniter.Iterator) {
	s := (*[]T)(ptr)
	if it.ReadNil() {
		*s = nil
		return
	}
	out := make([]T, 0, 4)
	it.ReadArrayCB(func(it *jsoniter.Iterator) bool {
		if len(out) >= maxContainers {
			it.ReportError("decode", errTooManyContainers)
			return false
		}
		var v T
		it.ReadVal(&v)
		out = append(out, v)
		return it.Error == nil
	})
	*s = out
}

// decode turns the request's raw object into the typed object of its kind:
// no scheme, no conversion, no second pass.
func decode(gk schema.GroupKind, raw []byte) (runtime.Object, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("the request carries no object")
	}
	obj, ok := podspec.NewObject(gk)
	if !ok {
		return nil, fmt.Errorf("kind %s is not one podguard judges", gk)
	}
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("decoding the %s: the object is not valid UTF-8", gk.Kind)
	}
	if err := jsonAPI.Unmarshal(raw, obj); err != nil {
		return nil, decodeError(gk, err)
	}
	return obj, nil
}

// typePath matches the Go type path a jsoniter error starts with
// ("v1.Pod.Spec", "[]v1.Container", "v1.EnvVar.ValueFrom").
var typePath = regexp.MustCompile(`^(\[\])?(map\[[a-z]+\])?[A-Za-z0-9_]+\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$`)

// decodeError describes why an object does not decode by the Go field
// that refused its value, and never quotes the object: decoders' messages
// carry a window of the input (and types' own errors, such as a time that
// does not parse, quote the value), which may hold an env value.
func decodeError(gk schema.GroupKind, err error) error {
	msg := err.Error()
	if strings.Contains(msg, errTooManyContainers) {
		return fmt.Errorf("the %s has more than %d containers in one list; podguard refuses to judge it", gk.Kind, maxContainers)
	}
	where := ""
	for _, seg := range strings.Split(msg, ": ") {
		if !typePath.MatchString(seg) {
			break
		}
		where = strings.TrimPrefix(seg, "[]")
	}
	if where == "" {
		return fmt.Errorf("decoding the %s: malformed JSON or a value of the wrong type", gk.Kind)
	}
	return fmt.Errorf("decoding the %s: %s holds a value of the wrong type or form", gk.Kind, where)
}
