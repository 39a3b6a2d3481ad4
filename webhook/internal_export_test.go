package webhook

// DebugHint exposes the kubectl debug hint to the external tests.
const DebugHint = debugHint
