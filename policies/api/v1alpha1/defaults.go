package v1alpha1

// DefaultNamespace is podguard's own namespace when neither --namespace nor
// POD_NAMESPACE says otherwise.
const DefaultNamespace = "podguard"

// DefaultUID and DefaultGID are the seed's appuser: 1000:1000.
const (
	DefaultUID int64 = 1000
	DefaultGID int64 = 1000
)

// Bool returns *b, false for nil.
func Bool(b *bool) bool { return b != nil && *b }
